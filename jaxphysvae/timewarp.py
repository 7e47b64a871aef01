"""Re-timing a sequence by one number: the decoder's time warp (ModelConfig.time_warp), and the re-timing
augmentation of training sequences (HParams.retime, `retime_sequences`).

The warp is the piecewise-linear map of the sample grid [0, T - 1] onto itself that keeps both ends (for walking
strides, the heel strikes that bound them) and moves the anchor sample a = anchor * (T - 1) to a + shift; the warped
sequence at sample t is the decoded one read at that map's value, by linear interpolation, so the output is
differentiable in the shift. A shift below min(a, T - 1 - a) keeps time's order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

# folded into each sequence's key, so that the re-timing draw is independent of the other draws from that key
_STREAM = 0x726574


def warp_positions(shift: Float[Array, "B"], anchor: float, length: int) -> Float[Array, "B T"]:
    """Where each warped sequence reads the decoded one: (B, T) positions in samples, 0 and T - 1 at the ends and
    anchor * (T - 1) + shift at the anchor sample (shift in samples)."""
    end = length - 1
    a = anchor * end
    grid = jnp.arange(length, dtype=shift.dtype)
    moved = a + shift[:, None]
    return jnp.where(grid <= a, grid * moved / a, moved + (grid - a) * (end - moved) / (end - a))


def retime(x: Float[Array, "B C T"], shift: Float[Array, "B"], anchor: float) -> Float[Array, "B C T"]:
    """x re-timed by each sequence's `shift` (samples): x[b, c] read at warp_positions(shift, anchor, T)[b]."""
    length = x.shape[-1]
    positions = jnp.clip(warp_positions(shift, anchor, length), 0, length - 1)
    left = jnp.clip(jnp.floor(positions), 0, length - 2)
    weight = (positions - left)[:, None]
    index = jnp.broadcast_to(left.astype(jnp.int32)[:, None], x.shape)
    at = lambda i: jnp.take_along_axis(x, i, axis=-1)
    return at(index) * (1 - weight) + at(index + 1) * weight


def retime_sequences(x: Float[Array, "B C T"], keys: jax.Array, level, anchor: float) -> Float[Array, "B C T"]:
    """The re-timing augmentation: each sequence of x (B, C, T) re-timed (`retime`) about `anchor` by its own shift
    level * u * (T - 1) samples, u ~ Uniform(-1, 1) drawn from its key (keys (B,)). What the encoder sees and what
    the decoder must reconstruct alike: new training sequences with their phases moved, for data whose timing varies
    between people, such as walking strides. level: a float32 scalar (hparams.retime, a sweep may vary it) below
    min(anchor, 1 - anchor); at 0 x is returned unchanged."""
    u = jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, _STREAM), minval=-1.0, maxval=1.0))(keys)
    shift = level * u * (x.shape[-1] - 1)
    return jnp.where(level > 0, retime(x, shift.astype(x.dtype), anchor), x)
