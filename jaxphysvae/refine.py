"""Fitting a trained model's code to each sequence at test time (semi-amortised inference).

The encoder maps a sequence to its code in one pass: the posterior means of z_P, z_A1, z_A2 and the initial state
s0. On sequences unlike the training ones (new people, other conditions) that map can miss the code the decoder
would reconstruct best: the amortisation gap. `refine` starts from the encoder's code and minimises each sequence's
squared reconstruction error of x_PAB over that code by Adam, the decoder's weights fixed, as PCA's projection does
for its linear decoder: the code size is unchanged, only the way to find it differs.

    config, hparams, model, fns, params, splits, _ = jaxphysvae.fit.load_run("runs/demo")
    out = refine(model, params, splits["test"].x, steps=200, lr=1e-2)
    out["sse_start"].mean(), out["sse"].mean()          # squared error per sequence, encoder's code vs fitted code
"""

from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxphysvae.data import batches, check_sequences
from jaxphysvae.errors import ConfigError
from jaxphysvae.latents import GROUPS
from jaxphysvae.model import PhysVAE

DEFAULT_LR = 1e-2  # Adam's step on the code (latents of about unit scale); on locomotion fold 0, 100 to 1000 steps
                   # at 1e-2 and 300 at 3e-2 agree to 1 %
_FNS: "weakref.WeakKeyDictionary[PhysVAE, dict]" = weakref.WeakKeyDictionary()


def _fit_function(model: PhysVAE, steps: int):
    """The jitted batch function of `model` for `steps` Adam steps, kept while the model lives."""
    cache = _FNS.setdefault(model, {})
    if steps in cache:
        return cache[steps]

    def sse(params, code, x):
        """(B,) squared error of x_PAB per sequence, and the reconstruction, for code = (latents, s0)."""
        z, s0 = code
        if model.config.clip_z_phy:
            z = z._replace(phy=model.physics.clip(z.phy))
        x_hat = model.decode(params, z, s0).x_PAB
        return jnp.sum((x_hat - x) ** 2, axis=(1, 2)), x_hat

    def fit(params, x, mask, lr):
        post = model.encode(params, x)
        z, _ = model.latents(params, post, None, mask)
        start = (z, post.s0)
        optimiser = optax.adam(lr)
        # each sequence's error depends on its own code only, and Adam scales every coordinate alone: the sum's
        # gradient steps every sequence as if it were fitted by itself (batching does not change the result)
        grad = jax.grad(lambda code: sse(params, code, x)[0].sum())

        def step(carry, _):
            code, state = carry
            updates, state = optimiser.update(grad(code), state)
            return (optax.apply_updates(code, updates), state), None

        (code, _), _ = jax.lax.scan(step, (start, optimiser.init(start)), None, length=steps)
        # a step may raise a sequence's error (Adam does not descend monotonically): keep the better code per sequence
        before, x_before = sse(params, start, x)
        after, x_after = sse(params, code, x)
        better = after < before
        pick = lambda new, old: jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
        code = jax.tree.map(pick, code, start)
        z, s0 = code
        if model.config.clip_z_phy:
            z = z._replace(phy=model.physics.clip(z.phy))
        return {"x_PAB": pick(x_after, x_before), "s0": s0, **{f"z_{g}": v for g, v in zip(GROUPS, z)},
                "sse_start": before, "sse": jnp.minimum(after, before)}

    cache[steps] = jax.jit(fit)
    return cache[steps]


def refine(model: PhysVAE, params, x, steps: int = 200, lr: float = DEFAULT_LR, batch_size: int = 500) -> dict:
    """Each sequence's code fitted to it: `steps` Adam steps at learning rate `lr` on the squared reconstruction
    error of x_PAB, from the encoder's posterior mean (z_P kept in its physical range where the model clips it).

    The code is every input of the decoder: z_phy (N, d_P), z_aux1 (N, d_A1), z_aux2 (N, d_A2) and the initial
    states s0 (N, S). A sequence whose fitted code reconstructs it worse than the encoder's keeps the encoder's.

    Args:
      x: (N, C, T) sequences in the units the model was trained on.
      steps: Adam steps (>= 0; 0 returns the encoder's code). One compiled program per value.
      lr: Adam's learning rate, in the code's units (the latents are about unit scale).
      batch_size: sequences per compiled call; the results do not depend on it, except for a model with a "batch"
        attention context, whose starting code depends on the batch (as in `predict`).

    Returns numpy arrays: z_phy, z_aux1, z_aux2, s0 (the fitted code), x_PAB (N, C, T) its reconstruction, sse_start
    and sse (N,) the squared error summed over channels and time of the encoder's code and of the fitted one.

    Raises:
      DataError: x of the wrong shape or with NaN / Inf; ConfigError: a negative or non-integer steps, a
        non-positive or non-finite lr, a batch size below 1.
    """
    x = check_sequences(x, "refine: x", channels=model.num_channels, length=model.num_steps)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ConfigError(f"refine: steps must be an integer >= 0, got {steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"refine: batch_size must be an integer >= 1, got {batch_size!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ConfigError(f"refine: lr must be a positive number, got {lr!r}")
    fn = _fit_function(model, int(steps))
    parts = []
    for b in batches(x, min(batch_size, x.shape[0]), remainder="pad"):
        out = fn(params, jnp.asarray(b.x), jnp.asarray(b.mask), jnp.float32(lr))
        parts.append({k: np.compress(b.mask, np.asarray(v), axis=0) for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
