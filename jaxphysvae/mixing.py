"""Mixing augmentation: training sequences blended with other sequences of their batch (mixup on the data).

Each valid sequence x_i of a training batch is replaced by

    x_i + lam_i (x_j - x_i),    lam_i ~ Uniform(0, level),    j drawn uniformly among the batch's valid sequences,

the blend being both what the encoder sees and what the decoder must reconstruct: new sequences between the
training ones (between the people of a locomotion batch), for data where a convex combination of two sequences is
itself a plausible sequence. `level` (hparams.mix, in [0, 1]) is data, so a sweep may vary it; at 0 every sequence
is returned unchanged (lam = 0 exactly). Partner and weight are drawn from each sequence's own key; the partner is
necessarily one of its batch's sequences (it may be the sequence itself).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

# folded into each sequence's key, so that the mixing draws are independent of the other draws from that key
_STREAM = 0x6D6978


def mix_sequences(x: Float[Array, "B C T"], mask: Bool[Array, "B"], keys: jax.Array, level) -> Float[Array, "B C T"]:
    """The batch x (B, C, T) with each row blended with a random valid row (see the module docstring); keys (B,)
    one per sequence; mask (B,) the valid rows (masked rows, which add nothing to the objective, are mixed too
    but never chosen as partners); level: a float32 scalar in [0, 1], the largest weight of the partner."""
    logits = jnp.where(mask, 0.0, -jnp.inf)

    def draws(key):
        k_partner, k_weight = jax.random.split(jax.random.fold_in(key, _STREAM))
        return jax.random.categorical(k_partner, logits), level * jax.random.uniform(k_weight)

    partner, lam = jax.vmap(draws)(keys)
    return x + lam[:, None, None] * (x[partner] - x)
