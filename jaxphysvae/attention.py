"""Attention contexts that mix "contextual information" into a latent branch (METHOD.md section 3).

Two contexts, chosen per branch:

- "batch" (the published one): after the flows, one-head scaled dot-product attention across the latent samples
  Z (N, d) of the minibatch, Q, K, V = linear maps of Z, A = softmax(Q K^T / sqrt d), and z <- z + z * (A V).
  A sequence's code then depends on the other sequences it is batched with: evaluation uses a fixed batch size in
  a fixed order (stated with the results), and padding rows of a batch are masked out of the keys.

- "seq" (ours, batch-independent): self-attention over the T time steps of the branch's own input. Each time step
  (its C values) is embedded with a learned positional embedding to `dim` features, one head of scaled dot-product
  attention lets every step attend to every other step of the same sequence, the result is averaged over time
  and mapped to the branch's feature width, and it gates the branch's features: h <- h + h * context. The
  context is computed from the sequence alone, so a sequence's code never depends on the rest of the batch.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

CONTEXTS = ("none", "batch", "seq")


class BatchAttention(nn.Module):
    """z (N, d) -> z + z * (softmax(Q K^T / sqrt d) V), attention over the rows of the batch; mask (N,) keys."""

    @nn.compact
    def __call__(self, z, mask=None):
        d = z.shape[-1]
        # no key bias: it adds the same logit to a whole row, to which the softmax is blind (zero gradient)
        q, k, v = nn.Dense(d, name="query")(z), nn.Dense(d, use_bias=False, name="key")(z), nn.Dense(d, name="value")(z)
        logits = q @ k.T / jnp.sqrt(d)
        if mask is not None:
            logits = jnp.where(mask[None, :], logits, -jnp.inf)
        return z + z * (jax.nn.softmax(logits, axis=-1) @ v)


class SequenceContext(nn.Module):
    """x (B, C, T) -> a context (B, out_features) from self-attention over each sequence's own time steps."""

    dim: int
    out_features: int

    @nn.compact
    def __call__(self, x):
        tokens = nn.Dense(self.dim, name="embed")(jnp.swapaxes(x, 1, 2))  # (B, T, dim)
        position = self.param("position", nn.initializers.normal(0.02), (x.shape[-1], self.dim))
        tokens = tokens + position
        q = nn.Dense(self.dim, name="query")(tokens)
        k = nn.Dense(self.dim, use_bias=False, name="key")(tokens)  # a key bias would get no gradient
        v = nn.Dense(self.dim, name="value")(tokens)
        attended = nn.dot_product_attention(q[:, :, None, :], k[:, :, None, :], v[:, :, None, :])[:, :, 0, :]
        return nn.Dense(self.out_features, name="out")(jnp.mean(attended, axis=1))
