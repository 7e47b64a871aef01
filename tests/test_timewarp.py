"""jaxphysvae.timewarp and ModelConfig.time_warp: the warp keeps the ends and moves the anchor, re-timing reads the
sequence where np.interp does, its gradient in the shift is the finite difference's, a decoder with the warp
re-times all four reconstructions by its last z_A2 unit; the re-timing augmentation (HParams.retime) re-times each
training sequence by a shift from its own key, uniform up to the level, and the training step differentiates the
re-timed batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.config import HParams, check_hparams
from jaxphysvae.errors import ConfigError
from jaxphysvae.model import PhysVAE
from jaxphysvae.sweep import sweep
from jaxphysvae.timewarp import retime, retime_sequences, warp_positions
from tests.helpers import augmented_step_setup, pendulum_splits, small_config


def _expected_positions(shift, anchor, length):
    end = length - 1
    return np.interp(np.arange(length), [0, anchor * end, end], [0, anchor * end + shift, end])


def test_the_warp_keeps_the_ends_and_moves_the_anchor():
    positions = np.asarray(warp_positions(jnp.array([0.0, 4.0, -6.5]), 0.6, 101))
    for row, shift in zip(positions, (0.0, 4.0, -6.5)):
        np.testing.assert_allclose(row, _expected_positions(shift, 0.6, 101), atol=1e-4)
        assert row[[0, 60, 100]] == pytest.approx([0, 60 + shift, 100], abs=1e-4)
        assert np.all(np.diff(row) > 0)


def test_retiming_reads_each_sequence_where_np_interp_does():
    x = np.random.default_rng(0).standard_normal((3, 2, 41)).astype(np.float32)
    shifts = np.array([0.0, 3.25, -5.5], np.float32)
    out = np.asarray(retime(jnp.asarray(x), jnp.asarray(shifts), 0.5))
    for b, shift in enumerate(shifts):
        for c in range(2):
            np.testing.assert_allclose(out[b, c], np.interp(_expected_positions(shift, 0.5, 41), np.arange(41),
                                                            x[b, c]), atol=2e-5)
    assert np.array_equal(out[0], x[0])  # no shift, no change


def test_the_gradient_in_the_shift_is_the_finite_difference():
    t = jnp.linspace(0, 1, 101)
    x = jnp.stack([jnp.sin(2 * jnp.pi * t), jnp.cos(3 * t)])[None].astype(jnp.float32)
    weights = jnp.asarray(np.random.default_rng(1).standard_normal((1, 2, 101)), jnp.float32)
    f = lambda s: (retime(x, s, 0.6) * weights).sum()
    shift, h = jnp.array([2.3]), 0.05
    numeric = (f(shift + h) - f(shift - h)) / (2 * h)
    assert float(jax.grad(f)(shift)[0]) == pytest.approx(float(numeric), rel=1e-2)  # float32 sums: 3e-3 apart


def test_a_warped_decoder_retimes_every_reconstruction_by_its_last_residual_unit():
    plain = PhysVAE(small_config(), 1, 50, 0.05)
    warped = PhysVAE(small_config(time_warp=0.1), 1, 50, 0.05)
    params = plain.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 1, 50)) * 0.3, jnp.float32)
    post = plain.encode(params, x)
    z = post.mean._replace(aux2=post.mean.aux2.at[:, -1].set(jnp.array([0.0, 0.7, -1.5])))
    before, after = plain.decode(params, z, post.s0), warped.decode(params, z, post.s0)
    shifts = 0.1 * 49 * np.tanh([0.0, 0.7, -1.5])
    for r0, r1 in zip(before, after):
        for b, shift in enumerate(shifts):
            expected = np.interp(_expected_positions(shift, 0.6, 50), np.arange(50), np.asarray(r0[b, 0]))
            np.testing.assert_allclose(np.asarray(r1[b, 0]), expected, atol=2e-5)


def _shift_of(x, out, anchor):
    """The shift (samples) by which row `out` (C, T) re-times row `x`, found by a grid search with np.interp."""
    length = x.shape[-1]
    candidates = np.linspace(-0.45 * (length - 1), 0.45 * (length - 1), 901)

    def misfit(shift):
        positions = _expected_positions(shift, anchor, length)
        return max(np.abs(np.interp(positions, np.arange(length), c) - o).max() for c, o in zip(x, out))

    for _ in range(2):  # a coarse grid, then a fine one about its best point
        errors = [misfit(s) for s in candidates]
        best = candidates[int(np.argmin(errors))]
        step = candidates[1] - candidates[0]
        candidates = np.linspace(best - step, best + step, 201)
    return best, min(errors)


def test_the_retiming_augmentation_draws_each_shift_from_its_sequence_s_key_up_to_the_level():
    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, 51)
    x = np.stack([np.stack([np.sin(2 * np.pi * (t + rng.uniform())), t ** 2 + rng.uniform()]) for _ in range(6)])
    x = x.astype(np.float32)
    level, anchor = 0.2, 0.6
    np.testing.assert_array_equal(np.asarray(retime_sequences(jnp.asarray(x), jax.random.split(jax.random.key(0), 6),
                                                              jnp.float32(0.0), anchor)), x)
    shifts = []
    for seed in range(8):
        keys = jax.random.split(jax.random.key(seed), 6)
        out = np.asarray(retime_sequences(jnp.asarray(x), keys, jnp.float32(level), anchor))
        reversed_ = np.asarray(retime_sequences(jnp.asarray(x[::-1]), keys[::-1], jnp.float32(level), anchor))[::-1]
        np.testing.assert_allclose(reversed_, out, atol=1e-6)  # a row's shift comes from its own key
        for row_x, row_out in zip(x, out):
            shift, misfit = _shift_of(row_x, row_out, anchor)
            assert misfit < 1e-4
            np.testing.assert_allclose(row_out[:, [0, -1]], row_x[:, [0, -1]], atol=1e-6)  # the ends stay
            shifts.append(shift / 50)
    shifts = np.array(shifts)  # 48 draws of Uniform(-level, level)
    assert np.abs(shifts).max() <= level + 1e-3 and np.abs(shifts).max() > 0.8 * level
    assert shifts.mean() == pytest.approx(0.0, abs=0.06) and np.mean(shifts > 0) == pytest.approx(0.5, abs=0.2)


def test_train_step_differentiates_the_retimed_batch_and_the_level_is_bounded():
    config, model, fns, hp, state, x, mask, key = augmented_step_setup(retime=0.2)
    _, metrics = fns.train_step(state, (x, mask), key, hp)
    keys = jax.random.split(key, 8)
    retimed = retime_sequences(x, keys, hp.retime, config.model.time_warp_anchor)
    loss_retimed, _ = model.batch_loss(state.params, retimed, mask, keys, hp)
    loss_clean, _ = model.batch_loss(state.params, x, mask, keys, hp)
    assert float(metrics["loss"]) == pytest.approx(float(loss_retimed), rel=1e-5)
    assert abs(float(loss_retimed) - float(loss_clean)) > 1e-3 * abs(float(loss_clean))
    fns.train_step(state, (x, mask), key, hp._replace(retime=jnp.float32(0.0)))
    assert fns.train_step.cache_size() == 1  # one program for every level: retime is data
    # a shift that could reverse time's order about the anchor (0.6: below 0.4) is refused before any compute
    with pytest.raises(ConfigError, match=r"retime must lie below 0.4 .*time_warp_anchor=0.6"):
        check_hparams(config, HParams.create(retime=0.4))
    with pytest.raises(ConfigError, match="retime must lie below 0.4"):
        sweep(config, {"x_lnvar": -4.0}, {"retime": [0.1, 0.45]}, None, progress=False,
              splits=pendulum_splits())
    with pytest.raises(ConfigError, match=r"retime .* must lie in \[0, 1\]"):
        HParams.create(retime=-0.1)
