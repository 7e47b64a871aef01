"""jaxphysvae.timewarp and ModelConfig.time_warp: the warp keeps the ends and moves the anchor, re-timing reads the
sequence where np.interp does, its gradient in the shift is the finite difference's, and a decoder with the warp
re-times all four reconstructions by its last z_A2 unit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.model import PhysVAE
from jaxphysvae.timewarp import retime, warp_positions
from tests.helpers import small_config


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
