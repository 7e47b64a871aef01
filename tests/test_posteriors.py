"""Attention contexts, noise models, and the whole step with flows and attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.config import HParams, stack
from jaxphysvae.data import Dataset
from jaxphysvae.errors import ConfigError
from jaxphysvae.flows import chain, split_params
from jaxphysvae.model import Noise, PhysVAE
from jaxphysvae.noise import feature_noise, input_noise
from jaxphysvae.train import evaluate, make_functions
from tests.helpers import assert_trees_close, small_config

C, T = 3, 20
HP = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-2.0, noise=0.1)


def attentive(context, **changes):
    """The locomotion NF architecture at toy size: learned Hamiltonian, flows and attention on z_P and z_A2."""
    return small_config(physics="hamiltonian", dim_z_phy=2, dim_z_aux1=-1, dim_z_aux2=3, ppc="residual",
                        unmixer="residual", flow_phy=3, flow_aux2=4, attention_phy=context, attention_aux2=context,
                        attention_dim=8, **changes)


def light(context, **changes):
    """The same posteriors around the cheaper pendulum physics (one channel), where compile time matters."""
    return small_config(dim_z_aux1=-1, dim_z_aux2=3, flow_phy=3, flow_aux2=4, attention_phy=context,
                        attention_aux2=context, attention_dim=8, **changes)


def _x(b=8, seed=0, c=C):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(b, c, T)) * 0.3, jnp.float32)


STATS = {"std": np.array([0.5, 1.0, 2.0]), "min": np.array([-1.0, 0.0, 5.0]), "max": np.array([1.0, 2.0, 6.0])}
STATS1 = {k: v[:1] for k, v in STATS.items()}


@pytest.mark.parametrize("context", ["batch", "seq"])
def test_every_parameter_learns(context):
    """Unlike the published code, the z_P flows and the attention weights get gradient."""
    model = PhysVAE(attentive(context, noise="feature"), C, T, 0.05)
    params = model.init(jax.random.key(0))
    grads = jax.jit(jax.grad(lambda p: model.loss(p, _x(), jnp.ones(8, bool), jax.random.key(1), HP)[0]))(params)
    flat = jax.tree_util.tree_flatten_with_path(grads)[0]
    dead = [jax.tree_util.keystr(path) for path, g in flat if not bool(jnp.any(g != 0))]
    assert not dead, dead
    names = {jax.tree_util.keystr(path) for path, _ in flat}
    assert any("flow_phy" in n for n in names) and any(("attention_phy" if context == "batch" else "context_phy") in n
                                                        for n in names)


def _outputs(model, params, x, keys):
    post = model.encode(params, x)
    z_mean, _ = model.latents(params, post, None)
    z_sample, _ = model.latents(params, post, keys)
    return model.decode(params, z_mean, post.s0).x_PAB, model.decode(params, z_sample, post.s0).x_PAB


@pytest.mark.parametrize("context, independent", [("seq", True), ("none", True), ("batch", False)])
def test_batch_independence(context, independent):
    model = PhysVAE(light(context), 1, T, 0.05)
    params = model.init(jax.random.key(0))
    x = _x(c=1)
    keys = jax.random.split(jax.random.key(5), 8)
    f = jax.jit(lambda x, k: _outputs(model, params, x, k))
    mean, sample = f(x, keys)
    order = jnp.array([3, 7, 0, 5, 1, 6, 2, 4])  # moves every row: no sequence keeps its place (or its key's)
    assert not np.any(np.asarray(order) == np.arange(8))
    mean_perm, sample_perm = f(x[order], keys[order])
    other = x.at[1:].set(_x(seed=9, c=1)[1:])
    mean_other, sample_other = f(other, keys)
    same = [np.allclose(mean_perm, mean[order], atol=1e-6), np.allclose(sample_perm, sample[order], atol=1e-6),
            np.allclose(mean_other[0], mean[0], atol=1e-6), np.allclose(sample_other[0], sample[0], atol=1e-6)]
    if independent:
        assert all(same)
    else:
        assert not same[2] and not same[3]  # replacing the other sequences changes sequence 0's output


def _with_phy_mean(post, m):
    return post._replace(mean=post.mean._replace(phy=m))


def _squash(u, lo, hi):
    """lo + (hi - lo) sigmoid(u) in float64."""
    return lo + (hi - lo) / (1.0 + np.exp(-np.asarray(u, np.float64)))


def test_logit_space_keeps_flowed_z_phy_in_its_range():
    """Whatever the flow does to z_P, in logit space the decoder gets lo + (hi - lo) sigmoid(z_K), z_K recomputed
    here with distrax's chain of planar steps: inside the range, never clipped."""
    model = PhysVAE(light("none", z_phy_space="logit"), 1, T, 0.05)
    params = model.init(jax.random.key(0))
    post = _with_phy_mean(model.encode(params, _x(c=1)), jnp.linspace(-30.0, 30.0, 8)[:, None])
    z, _ = model.latents(params, post, None)
    z_k, _ = chain(split_params(post.flows.phy, 3, 1)).forward_and_log_det(post.mean.phy)
    lo, hi = (float(b[0]) for b in model.physics.z_range)
    np.testing.assert_allclose(z.phy, _squash(z_k, lo, hi), rtol=1e-5)
    samples, _ = model.latents(params, post, jax.random.split(jax.random.key(3), 8))
    assert np.all((np.asarray(samples.phy) >= lo) & (np.asarray(samples.phy) <= hi))


def _phy_only(space):
    return PhysVAE(small_config(dim_z_aux1=-1, dim_z_aux2=-1, unmixer="none", z_phy_space=space), 1, T, 0.05)


def test_logit_space_passes_the_gradient_that_the_clip_cuts():
    """d z_P / d(mean) of the posterior mean: 1 inside the range and 0 beyond it where z_P is clipped (a sample
    that leaves the range teaches the encoder nothing); (hi - lo) s (1 - s), s = sigmoid(mean), in logit space."""
    m = jnp.array([[-2.0], [0.5], [1.0], [4.0], [6.0]])
    grads = {}
    for space in ("physical", "logit"):
        model = _phy_only(space)
        params = model.init(jax.random.key(0))
        post = model.encode(params, _x(b=5, c=1))
        grads[space] = jax.grad(lambda m: model.latents(params, _with_phy_mean(post, m), None)[0].phy.sum())(m)
    lo, hi = (float(b[0]) for b in model.physics.z_range)
    assert (lo, hi) == pytest.approx((0.392, 3.53))
    np.testing.assert_array_equal(grads["physical"][:, 0], [0.0, 1.0, 1.0, 0.0, 0.0])
    s = 1.0 / (1.0 + np.exp(-np.asarray(m[:, 0], np.float64)))
    np.testing.assert_allclose(grads["logit"][:, 0], (hi - lo) * s * (1 - s), rtol=1e-4)


def test_logit_space_prior_and_physics_mean():
    """In logit space z_P's KL is against N(0, pi^2 / 3) (the closed form, recomputed here), and the augmentation
    term R_DA2 compares the encoder's mean mapped into the range with the simulated parameter."""
    model = _phy_only("logit")
    params = model.init(jax.random.key(0))
    x = _x(b=6, c=1)
    post = model.encode(params, x)
    _, kl = model.latents(params, post, jax.random.split(jax.random.key(1), 6))
    m, v = np.asarray(post.mean.phy[:, 0], np.float64), np.asarray(post.lnvar.phy[:, 0], np.float64)
    prior_var = np.pi ** 2 / 3
    expected = 0.5 * (np.log(prior_var) - v + (np.exp(v) + m ** 2) / prior_var - 1.0)
    np.testing.assert_allclose(kl, expected, rtol=1e-4)
    lo, hi = (float(b[0]) for b in model.physics.z_range)
    np.testing.assert_allclose(model.physics_mean(params, x)[:, 0], _squash(m, lo, hi), rtol=1e-5)


def test_da2_flowed_anchors_the_flowed_mean():
    """With da2_flowed, R_DA2's estimate is the base mean pushed through z_P's flow (recomputed with distrax's chain),
    in physical units or mapped into the range in logit space; without it, the base mean (as published)."""
    x = _x(c=1)
    for space in ("physical", "logit"):
        model = PhysVAE(light("none", z_phy_space=space, da2_flowed=True), 1, T, 0.05)
        params = model.init(jax.random.key(0))
        mean, _, flow = model.encoder.branch(params, "phy", x, None)
        z_k, _ = chain(split_params(flow, 3, 1)).forward_and_log_det(mean)
        assert not np.allclose(z_k, mean, atol=1e-3)  # the flow moves the mean
        lo, hi = (float(b[0]) for b in model.physics.z_range)
        expected = _squash(z_k, lo, hi) if space == "logit" else z_k
        np.testing.assert_allclose(model.physics_mean(params, x), expected, rtol=1e-5, atol=1e-6)
    published = PhysVAE(light("none"), 1, T, 0.05)
    params = published.init(jax.random.key(0))
    np.testing.assert_allclose(published.physics_mean(params, x), published.encoder.branch(params, "phy", x, None)[0])


def test_logit_space_needs_a_physical_range():
    with pytest.raises(ConfigError, match="z_range"):
        PhysVAE(attentive("none", z_phy_space="logit"), C, T, 0.05)
    with pytest.raises(ConfigError, match="z_phy_space"):
        small_config(z_phy_space="log")


def test_input_noise_fractions():
    x = jnp.zeros((400, 3, 100)) + jnp.array([0.5, 1.0, 5.5])[None, :, None]
    keys = jax.random.split(jax.random.key(0), 400)
    stats = {k: jnp.asarray(v, jnp.float32) for k, v in STATS.items()}
    noisy = input_noise("gaussian", x, keys, 0.2, stats)
    np.testing.assert_allclose(np.std(noisy - x, axis=(0, 2)), 0.2 * STATS["std"], rtol=0.02)
    noisy = input_noise("impulse", x, keys, 0.15, stats)
    changed = np.asarray(noisy != x)
    assert changed.mean() == pytest.approx(0.15, abs=0.01)
    assert np.all((noisy >= stats["min"][:, None]) & (noisy <= stats["max"][:, None]))
    noisy = input_noise("segment", x, keys, 0.25, stats)
    zeroed = np.asarray(noisy == 0).all(axis=1)  # (400, 100) time steps masked in all channels
    assert np.all(zeroed.sum(axis=1) == 25)
    runs = [np.flatnonzero(row) for row in zeroed]
    assert all(r[-1] - r[0] == 24 for r in runs)  # one contiguous block
    assert len({r[0] for r in runs}) > 30  # at random positions
    assert np.array_equal(input_noise("segment", x, keys, 0.0, stats), x)


def test_feature_noise_fractions():
    h = jnp.ones((4000, 512))
    keys = jax.random.split(jax.random.key(1), 4000)
    out = np.asarray(feature_noise("feature", h, keys, 0.1, seq_fraction=0.1))
    hit = (out == 0).any(axis=1)
    assert hit.mean() == pytest.approx(0.1, abs=0.015)
    assert (out[hit] == 0).mean() == pytest.approx(0.1, abs=0.005)
    out = np.asarray(feature_noise("dropout", h, keys, 0.3, seq_fraction=0.1))
    assert (out == 0).mean() == pytest.approx(0.3, abs=0.005) and (out == 0).any(axis=1).all()


@pytest.mark.parametrize("kind", ["gaussian", "impulse", "segment", "feature", "dropout"])
def test_noise_is_absent_at_evaluation_unless_requested(kind):
    config = light("seq", noise=kind)
    model = PhysVAE(config, 1, T, 0.05, data_stats=STATS1)
    fns = make_functions(model, config)
    params = fns.init(jax.random.key(0), HP).params
    ds = Dataset("toy", "test", np.asarray(_x(12, seed=3, c=1)), 0.05, ("a",))
    clean, _ = evaluate(fns, params, ds, HP, batch_size=6)
    clean_model = PhysVAE(light("seq"), 1, T, 0.05, data_stats=STATS1)
    reference, _ = evaluate(make_functions(clean_model, config), params, ds, HP, batch_size=4)
    assert clean["sse_per_seq"] == pytest.approx(reference["sse_per_seq"], rel=1e-5)
    noisy, _ = evaluate(fns, params, ds, HP, batch_size=6, noise_kind=kind, noise_level=0.3)
    assert noisy["sse_per_seq"] != pytest.approx(clean["sse_per_seq"], rel=1e-6)
    noisy_again, _ = evaluate(fns, params, ds, HP, batch_size=4, noise_kind=kind, noise_level=0.3)
    assert noisy_again["sse_per_seq"] == pytest.approx(noisy["sse_per_seq"], rel=1e-5)  # batch-independent


def test_training_targets_are_the_clean_data():
    model = PhysVAE(attentive("none", noise="segment"), C, T, 0.05, data_stats=STATS)
    params = model.init(jax.random.key(0))
    x = _x()
    hp = HP._replace(noise=jnp.float32(1.0))  # the encoder sees zeros only
    _, metrics = model.loss(params, x, jnp.ones(8, bool), jax.random.key(0), hp)
    parts = jax.vmap(lambda k: jax.random.split(k, 3))(jax.random.split(jax.random.key(0), 8))  # as in the loss
    k_sample, k_noise = parts[:, 0], parts[:, 2]
    post = model.encode(params, x, Noise("segment", hp.noise, k_noise))
    blind = model.encode(params, jnp.zeros_like(x))  # at level 1 the whole input is masked
    np.testing.assert_allclose(post.mean.aux2, blind.mean.aux2, atol=1e-6)
    z, _ = model.latents(params, post, k_sample, jnp.ones(8, bool))
    rec = model.decode(params, z, post.s0)
    assert float(metrics["sse"]) == pytest.approx(float(jnp.mean(jnp.sum((rec.x_PAB - x) ** 2, (1, 2)))), rel=1e-5)


def test_step_with_flows_attention_and_noise_compiles_once_and_vmaps():
    config = light("batch", noise="feature")
    model = PhysVAE(config, 1, T, 0.05)
    fns = make_functions(model, config)
    hps = [HP, HParams.create(alpha=0.1, beta=0.0, gamma=0.0, lr=2e-3, x_lnvar=-1.0, noise=0.5)]
    states = [fns.init(jax.random.key(i), h) for i, h in enumerate(hps)]
    batch = (_x(c=1), jnp.ones(8, bool))
    keys = jax.random.split(jax.random.key(7), 2)
    singles = list(states)
    for i in range(3):
        singles = [fns.train_step(s, batch, k, h)[0] for s, k, h in zip(singles, keys, hps)]
    assert fns.train_step.cache_size() == 1
    vstep = jax.jit(jax.vmap(fns.train_step_raw, in_axes=(0, None, 0, 0)))
    vstate = jax.tree.map(lambda *a: jnp.stack(a), *states)
    for _ in range(3):
        vstate, _ = vstep(vstate, batch, keys, stack(hps))
    for i in range(2):
        assert_trees_close(jax.tree.map(lambda v: v[i], vstate.params), singles[i].params, rtol=2e-4, atol=2e-6)
