"""Noise models for training and robustness tests; the level p in [0, 1] is a hyper-parameter (vmappable).

Input noise (applied to what the encoder sees; the targets of the loss and of the metrics stay clean):
  "gaussian"  x + p * std_c * N(0, 1), std_c each channel's standard deviation in the training data
  "impulse"   a fraction p of the values replaced by uniform values within the channel's training range
  "segment"   a contiguous block of round(p T) time steps set to zero, at a uniformly random position
Feature noise (applied to every branch's encoder features, as the NF paper's "noise injected in the model"):
  "feature"   each sequence is selected with probability `seq_fraction` (0.1 in the paper), and a selected
              sequence has each feature unit set to zero with probability p (0.1 in the paper)
  "dropout"   every sequence has each feature unit set to zero with probability p (no rescaling)

Every draw is made per sequence from that sequence's own key, so that a sequence's noise does not depend on the
batch it is in; fractions are therefore i.i.d. probabilities rather than exact counts per batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

INPUT_NOISE = ("gaussian", "impulse", "segment")
FEATURE_NOISE = ("feature", "dropout")
NOISE = ("none", *INPUT_NOISE, *FEATURE_NOISE)


def input_noise(kind: str, x: jax.Array, keys: jax.Array, p, stats: dict) -> jax.Array:
    """Noisy copy of x (B, C, T) for input-noise `kind`; keys (B,) one per sequence; stats: per-channel
    'std', 'min', 'max' arrays of shape (C,)."""
    if kind not in INPUT_NOISE:
        return x

    def one(x, key):
        k1, k2 = jax.random.split(key)
        if kind == "gaussian":
            return x + p * stats["std"][:, None] * jax.random.normal(k1, x.shape)
        if kind == "impulse":
            hit = jax.random.bernoulli(k1, p, x.shape)
            values = jax.random.uniform(k2, x.shape, minval=stats["min"][:, None], maxval=stats["max"][:, None])
            return jnp.where(hit, values, x)
        t = x.shape[-1]
        length = jnp.round(p * t)
        start = jnp.floor(jax.random.uniform(k1) * (t - length + 1))
        steps = jnp.arange(t)
        return jnp.where((steps >= start) & (steps < start + length), 0.0, x)

    return jax.vmap(one)(x, keys)


def feature_noise(kind: str, h: jax.Array, keys: jax.Array, p, seq_fraction: float) -> jax.Array:
    """Features h (B, F) with units zeroed by feature-noise `kind`; keys (B,) one per sequence."""
    if kind not in FEATURE_NOISE:
        return h

    def one(h, key):
        k1, k2 = jax.random.split(key)
        drop = jax.random.bernoulli(k2, p, h.shape)
        if kind == "feature":
            drop = drop & jax.random.bernoulli(k1, seq_fraction)
        return jnp.where(drop, 0.0, h)

    return jax.vmap(one)(h, keys)
