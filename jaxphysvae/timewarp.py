"""Re-timing a decoded sequence by one latent number: the decoder's time warp (ModelConfig.time_warp).

The warp is the piecewise-linear map of the sample grid [0, T - 1] onto itself that keeps both ends (for walking
strides, the heel strikes that bound them) and moves the anchor sample a = anchor * (T - 1) to a + shift; the warped
sequence at sample t is the decoded one read at that map's value, by linear interpolation, so the output is
differentiable in the shift. A shift below min(a, T - 1 - a) keeps time's order.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


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
