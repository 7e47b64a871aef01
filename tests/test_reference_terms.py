"""The options that reproduce the reference pendulum code's terms (issue 13.5): PyTorch's initialisation, an in-ODE
correction that reads the time, and z_P kept as drawn (only non-negative) instead of clipped to its range."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.encoder import Posterior
from jaxphysvae.latents import Latents
from jaxphysvae.model import PhysVAE
from tests.helpers import small_config


def _dense_layers(params):
    """(name, kernel, bias) of every dense layer of the encoder's and decoder's networks."""
    out = []
    for net, tree in params["nets"].items():
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            if jax.tree_util.keystr(path).endswith("['kernel']"):
                layer = jax.tree_util.keystr(path)[:-len("['kernel']")]
                bias = [b for p, b in jax.tree_util.tree_leaves_with_path(tree)
                        if jax.tree_util.keystr(p) == layer + "['bias']"]
                out.append((net + layer, np.asarray(leaf), np.asarray(bias[0]) if bias else None))
    return out


def test_torch_initialisation_is_uniform_within_one_over_root_fan_in():
    config = small_config(feat_hidden=(64,), feat_dim=64, head_hidden=(64, 32), residual_hidden=(64,))
    torch_like = _dense_layers(PhysVAE(config.replace(init="torch"), 1, 50, 0.05).init(jax.random.key(0)))
    default = _dense_layers(PhysVAE(config, 1, 50, 0.05).init(jax.random.key(0)))
    assert [name for name, _, _ in torch_like] == [name for name, _, _ in default] and len(default) >= 10
    for (name, kernel, bias), (_, kernel_default, bias_default) in zip(torch_like, default):
        bound = 1.0 / np.sqrt(kernel.shape[0])
        assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound, name
        assert np.all(bias_default == 0) and np.any(bias != 0), name  # flax's biases start at zero, torch's do not
        if kernel.size >= 2000:  # uniform on [-b, b]: standard deviation b / sqrt(3); lecun-normal's is sqrt(3) larger
            assert kernel.std() == pytest.approx(bound / np.sqrt(3), rel=0.08), name
            assert kernel_default.std() == pytest.approx(bound, rel=0.15), name


@pytest.mark.parametrize("with_time", [False, True])
def test_the_correction_reads_the_time_when_asked(with_time):
    """x_PA equals an Euler integration written out by hand, with f_A([s, z_A1, t]) or f_A([s, z_A1])."""
    config = small_config(dim_z_aux2=-1, unmixer="none", correction_time=with_time, solver="euler", substeps=1)
    model = PhysVAE(config, 1, 50, 0.05)
    params = model.init(jax.random.key(3))
    net = model.decoder.networks["correction"][0]
    assert params["nets"]["correction"]["params"]["Dense_0"]["kernel"].shape[0] == 2 + 1 + int(with_time)
    omega, z_a1, s = 2.0, 0.7, np.array([0.8, 0.0], np.float32)
    expected = [s[0]]
    for k in range(49):
        t = np.float32(k * 0.05)
        inputs = np.concatenate([s, [z_a1]] + ([[t]] if with_time else [])).astype(np.float32)
        correction = float(net.apply(params["nets"]["correction"], jnp.asarray(inputs))[0])
        s = s + 0.05 * np.array([s[1], -omega**2 * np.sin(s[0]) + correction], np.float32)
        expected.append(s[0])
    x_pa = model.decoder.trajectories(params, jnp.array([[omega]]), jnp.array([[z_a1]]), jnp.array([[0.8, 0.0]]),
                                      True)
    np.testing.assert_allclose(np.asarray(x_pa[0, 0]), expected, rtol=1e-4, atol=1e-5)


def test_z_phy_is_clipped_to_its_range_or_only_kept_non_negative():
    means = jnp.array([[5.0], [-1.0], [2.0]])  # above the pendulum's range [0.392, 3.53], below zero, inside
    b = means.shape[0]
    empty = jnp.zeros((b, 0))
    zeros = Latents(jnp.zeros((b, 1)), jnp.zeros((b, 1)), jnp.zeros((b, 2)))
    post = Posterior(zeros._replace(phy=means), zeros, Latents(empty, empty, empty), jnp.zeros((b, 1, 50)),
                     jnp.zeros((b, 2)))
    for clip, expected in ((True, [3.53, 0.392, 2.0]), (False, [5.0, 0.0, 2.0])):
        model = PhysVAE(small_config(clip_z_phy=clip), 1, 50, 0.05)
        z, _ = model.latents(model.init(jax.random.key(0)), post, None)
        np.testing.assert_allclose(np.asarray(z.phy[:, 0]), expected, rtol=1e-6)
