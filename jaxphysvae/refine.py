"""Fitting a trained model's code to each sequence at test time (semi-amortised inference).

The encoder maps a sequence to its code in one pass: the posterior means of z_P, z_A1, z_A2 and the initial state
s0. On sequences unlike the training ones (new people, other conditions) that map can miss the code the decoder
would reconstruct best: the amortisation gap. `refine` starts from the encoder's code and minimises each sequence's
squared reconstruction error of x_PAB over that code, by Adam or by Gauss-Newton (Levenberg-Marquardt) steps, the
decoder's weights fixed, as PCA's projection does for its linear decoder: the code size is unchanged, only the way to
find it differs. `parts` fits some of the code and keeps the encoder's for the rest, to see which part carries the gap.

    config, hparams, model, fns, params, splits, _ = jaxphysvae.fit.load_run("runs/demo")
    out = refine(model, params, splits["test"].x, steps=200, lr=1e-2)
    out["sse_start"].mean(), out["sse"].mean()          # squared error per sequence, encoder's code vs fitted code
    out = refine(model, params, splits["test"].x, method="gauss-newton", steps=5)   # the same fit in 5 steps
    out = refine(model, params, splits["test"].x, parts=("s0",))   # the initial states fitted, the latents kept

On the 344 locomotion test strides (code size 23; `python -m benchmarks.refine_speed`, 2 CPU cores), 3
Gauss-Newton steps reach the error of 200 Adam steps in 1.6 s against 22.6 s, compiled.
"""

from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from jaxphysvae.data import batches, check_sequences
from jaxphysvae.errors import ConfigError
from jaxphysvae.gauss_newton import damped_step
from jaxphysvae.latents import GROUPS
from jaxphysvae.model import PhysVAE

DEFAULT_LR = 1e-2  # Adam's step on the code (latents of about unit scale); on locomotion fold 0, 100 to 1000 steps
                   # at 1e-2 and 300 at 3e-2 agree to 1 %
DEFAULT_DAMPING = 1e-3  # Levenberg-Marquardt's starting mu, relative to the diagonal of J^T J
METHODS = ("adam", "gauss-newton")
DEFAULT_STEPS = {"adam": 200, "gauss-newton": 10}
PARTS = ("phy", "aux1", "aux2", "s0")  # the code's parts: the three latent groups (jaxphysvae.latents.GROUPS), s0
_FNS: "weakref.WeakKeyDictionary[PhysVAE, dict]" = weakref.WeakKeyDictionary()


def _fit_function(model: PhysVAE, steps: int, method: str, parts: tuple[str, ...]):
    """The jitted batch function of `model` for `steps` steps of `method` on the code's `parts`, kept while the
    model lives."""
    cache = _FNS.setdefault(model, {})
    if (steps, method, parts) in cache:
        return cache[steps, method, parts]

    def free(code):
        """1 on the units of `code` that are fitted, 0 on those kept at the encoder's (a tree like `code`)."""
        z, s0 = code
        one = lambda a, part: jnp.full_like(a, float(part in parts))
        return z._replace(**{g: one(getattr(z, g), g) for g in GROUPS}), one(s0, "s0")

    def clipped(z):
        return z._replace(phy=model.physics.clip(z.phy)) if model.config.clip_z_phy else z

    def sse(params, code, x):
        """(B,) squared error of x_PAB per sequence, and the reconstruction, for code = (latents, s0)."""
        z, s0 = code
        x_hat = model.decode(params, clipped(z), s0).x_PAB
        return jnp.sum((x_hat - x) ** 2, axis=(1, 2)), x_hat

    def adam(params, start, x, lr):
        optimiser = optax.adam(lr)
        # each sequence's error depends on its own code only, and Adam scales every coordinate alone: the sum's
        # gradient steps every sequence as if it were fitted by itself (batching does not change the result)
        grad = jax.grad(lambda code: sse(params, code, x)[0].sum())
        mask = free(start)  # a kept unit's gradient is 0, and so is Adam's update of it

        def step(carry, _):
            code, state = carry
            updates, state = optimiser.update(jax.tree.map(jnp.multiply, grad(code), mask), state)
            return (optax.apply_updates(code, updates), state), None

        (code, _), _ = jax.lax.scan(step, (start, optimiser.init(start)), None, length=steps)
        return code

    def gauss_newton(params, start, x, damping):
        def one(code, target):
            flat, unflatten = ravel_pytree(code)
            fitted, _ = ravel_pytree(free(code))  # (n,) 1 on a fitted unit

            def residual(v):  # (C T,) the reconstruction error of one sequence's flat code v
                z, s0 = jax.tree.map(lambda a: a[None], unflatten(v))
                return (model.decode(params, clipped(z), s0, forward_mode=True).x_PAB[0] - target).ravel()

            # (C T, n) Jacobian and (C T,) residual at v from the same forward-mode pass
            jacobian_and_residual = jax.jacfwd(lambda v: (residual(v),) * 2, has_aux=True)

            def step(carry, _):
                v, mu, err = carry
                jac, r = jacobian_and_residual(v)
                jac = jac * fitted  # a kept unit's column is 0, and so its step (the damping's floor decouples it)
                trial = v - damped_step(jac, r, mu)  # r is the reconstruction minus the target
                trial_err = jnp.sum(residual(trial) ** 2)
                better = trial_err < err  # False for a NaN: the step is refused and the damping grows
                return (jnp.where(better, trial, v), jnp.where(better, mu / 3, mu * 10),
                        jnp.where(better, trial_err, err)), None

            (v, _, _), _ = jax.lax.scan(step, (flat, damping, jnp.sum(residual(flat) ** 2)), None, length=steps)
            return unflatten(v)

        return jax.vmap(one)(start, x)

    def fit(params, x, mask, knob):
        post = model.encode(params, x)
        z, _ = model.latents(params, post, None, mask)
        start = (z, post.s0)
        code = (adam if method == "adam" else gauss_newton)(params, start, x, knob)
        # a step may raise a sequence's error (Adam does not descend monotonically): keep the better code per sequence
        before, x_before = sse(params, start, x)
        after, x_after = sse(params, code, x)
        better = after < before
        pick = lambda new, old: jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
        z, s0 = jax.tree.map(pick, code, start)
        return {"x_PAB": pick(x_after, x_before), "s0": s0, **{f"z_{g}": v for g, v in zip(GROUPS, clipped(z))},
                "sse_start": before, "sse": jnp.minimum(after, before)}

    cache[steps, method, parts] = jax.jit(fit)
    return cache[steps, method, parts]


def refine(model: PhysVAE, params, x, steps: int | None = None, lr: float = DEFAULT_LR, batch_size: int = 500,
           method: str = "adam", damping: float = DEFAULT_DAMPING, parts=PARTS) -> dict:
    """Each sequence's code fitted to it by `steps` steps of `method` on the squared reconstruction error of x_PAB,
    from the encoder's posterior mean (z_P kept in its physical range where the model clips it).

    The code is every input of the decoder: z_phy (N, d_P), z_aux1 (N, d_A1), z_aux2 (N, d_A2) and the initial
    states s0 (N, S); `parts` says which of them are fitted, the others keep the encoder's values. A sequence whose
    fitted code reconstructs it worse than the encoder's keeps the encoder's.

    Methods:
      "adam": gradient steps by Adam at learning rate `lr`, all sequences in one batched gradient.
      "gauss-newton": Levenberg-Marquardt steps on each sequence's code: the Jacobian of its reconstruction in the
        code (jax.jacfwd, one forward-mode pass per code unit through the ODE solve), the step solving
        (J^T J + mu diag(J^T J)) delta = J^T r, taken only where it lowers the error (mu / 3 after a taken step,
        x 10 after a refused one, from mu = `damping`). A few steps reach what hundreds of Adam steps reach where the
        reconstruction is close to linear in the code near its optimum (a linear residual, a smooth ODE); each
        step costs about (code size + 1) decoder passes: the Jacobian's, whose primal pass is the residual, and the
        trial step's.

    Args:
      x: (N, C, T) sequences in the units the model was trained on.
      steps: steps of `method` (>= 0; 0 returns the encoder's code; default: DEFAULT_STEPS[method]). One compiled
        program per value.
      lr: Adam's learning rate, in the code's units (the latents are about unit scale).
      batch_size: sequences per compiled call; the results do not depend on it, except for a model with a "batch"
        attention context, whose starting code depends on the batch (as in `predict`).
      method: "adam" or "gauss-newton" (METHODS).
      damping: Levenberg-Marquardt's starting mu (Gauss-Newton only).
      parts: the parts of the code fitted, a non-empty collection of PARTS ("phy", "aux1", "aux2", "s0") or one
        comma-separated string of them (default all). A model whose z_A2 mean is its least-squares code
        (config.aux2_least_squares) gets that code for the encoder's s0 and z_P: fitting s0 or z_P without "aux2"
        keeps it, not the least-squares code of the new s0 and z_P. One compiled program per selection.

    Returns numpy arrays: z_phy, z_aux1, z_aux2, s0 (the fitted code), x_PAB (N, C, T) its reconstruction, sse_start
    and sse (N,) the squared error summed over channels and time of the encoder's code and of the fitted one.

    Raises:
      DataError: x of the wrong shape or with NaN / Inf; ConfigError: an unknown method, a negative or non-integer
        steps, a non-positive or non-finite lr or damping, a batch size below 1, no parts or an unknown part.
    """
    x = check_sequences(x, "refine: x", channels=model.num_channels, length=model.num_steps)
    if method not in METHODS:
        raise ConfigError(f"refine: unknown method {method!r}; expected one of {', '.join(METHODS)}")
    steps = DEFAULT_STEPS[method] if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ConfigError(f"refine: steps must be an integer >= 0, got {steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"refine: batch_size must be an integer >= 1, got {batch_size!r}")
    for name, value in (("lr", lr), ("damping", damping)):
        if not (np.isfinite(value) and value > 0):
            raise ConfigError(f"refine: {name} must be a positive number, got {value!r}")
    parts = check_parts(parts)
    fn = _fit_function(model, int(steps), method, parts)
    knob = jnp.float32(lr if method == "adam" else damping)
    pieces = []
    for b in batches(x, min(batch_size, x.shape[0]), remainder="pad"):
        out = fn(params, jnp.asarray(b.x), jnp.asarray(b.mask), knob)
        pieces.append({k: np.compress(b.mask, np.asarray(v), axis=0) for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}


def check_parts(parts) -> tuple[str, ...]:
    """`parts` (a collection of PARTS, or one comma-separated string of them) in PARTS's order, duplicates dropped.
    Raises ConfigError for an empty collection or an unknown part."""
    given = [p.strip() for p in parts.split(",")] if isinstance(parts, str) else list(parts)
    unknown = [p for p in given if p not in PARTS]
    if unknown or not given:
        raise ConfigError(f"refine: parts {given!r}: expected a non-empty selection of {', '.join(PARTS)}"
                          + (f" (unknown: {', '.join(map(repr, unknown))})" if unknown else ""))
    return tuple(p for p in PARTS if p in given)
