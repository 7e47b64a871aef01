"""ODE integration on the data grid with diffrax: the one place where the decoder solves its ODE."""

from __future__ import annotations

from typing import Callable

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from jaxphysvae.config import SOLVERS, SYMPLECTIC, SolverConfig

FIXED_STEP = {"euler": diffrax.Euler, "heun": diffrax.Heun}
ADAPTIVE = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5}
assert (*FIXED_STEP, *ADAPTIVE, SYMPLECTIC) == SOLVERS  # the names SolverConfig accepts, each with its method


def _grid(t: np.ndarray, substeps: int) -> np.ndarray:
    fine = np.interp(np.arange((len(t) - 1) * substeps + 1) / substeps, np.arange(len(t)), t)
    return fine.astype(np.float32)


def integrate(field: Callable, y0, t: np.ndarray, args, solver: SolverConfig, forward_mode: bool = False):
    """Solve dy/dt = field(t, y, args) from y(t[0]) = y0 and return y at every point of the grid `t`.

    Args:
      field: vector field of one system, `(t, y, args) -> dy/dt` (y a pytree; for the symplectic solver a pair
        of fields `(g, h)`, dy_1/dt = g(t, y_2, args), dy_2/dt = h(t, y_1, args), and y0 = (y_1, y_2)).
      y0: initial state.
      t: the data's time grid, a NumPy array of shape (T,) (static: it fixes the number of solver steps).
      args: differentiable inputs of the field (parameters, latents). Pass only what the field reads: reverse
        mode accumulates a cotangent of every leaf of args at every solver step.
      solver: the method.
      forward_mode: differentiate the solve in forward mode (jax.jvp, jax.jacfwd; diffrax.ForwardMode), as
        Gauss-Newton fitting does, instead of reverse mode (jax.grad, the default); a solve supports one or the other.

    Returns:
      y on the grid: leaves of shape (T, ...).

    Errors: the solve never raises from inside the compiled program (`throw=False`; see `jaxphysvae/__init__.py`
    on equinox's runtime checks), which keeps every compiled program storable in JAX's persistent compilation
    cache. A failed adaptive solve returns NaN for its whole trajectory instead; `jaxphysvae.fit` checks the
    loss's finiteness after every epoch and stops the run with a message.

    Reverse mode: the fixed-step solvers checkpoint every step (the backward pass re-evaluates each step once and
    never re-runs the forward solve; memory T x the state); the adaptive ones use diffrax's default O(log n)
    recursive checkpointing within max_steps.
    """
    t = np.asarray(t, np.float32)
    saveat = diffrax.SaveAt(ts=jnp.asarray(t))
    if solver.name == SYMPLECTIC:
        g, h = field
        terms, method = (diffrax.ODETerm(g), diffrax.ODETerm(h)), diffrax.SemiImplicitEuler()
    else:
        terms = diffrax.ODETerm(field)
        method = ADAPTIVE[solver.name]() if solver.adaptive else FIXED_STEP[solver.name]()
    if solver.adaptive:
        controller = diffrax.PIDController(rtol=solver.rtol, atol=solver.atol)
        max_steps, adjoint = solver.max_steps, diffrax.RecursiveCheckpointAdjoint()
    else:
        grid = _grid(t, solver.substeps)
        controller, max_steps = diffrax.StepTo(ts=jnp.asarray(grid)), len(grid) - 1
        adjoint = diffrax.RecursiveCheckpointAdjoint(checkpoints=max_steps)
    if forward_mode:
        adjoint = diffrax.ForwardMode()
    dt0 = None if not solver.adaptive else float(t[1] - t[0]) / solver.substeps
    sol = diffrax.diffeqsolve(terms, method, t0=float(t[0]), t1=float(t[-1]), dt0=dt0, y0=y0, args=args,
                              saveat=saveat, stepsize_controller=controller, max_steps=max_steps, adjoint=adjoint,
                              throw=False)
    if not solver.adaptive:
        return sol.ys
    # a failed adaptive solve (max_steps reached, step size underflow) returns NaN, which the training loop's
    # per-epoch finiteness check reports, instead of a runtime error raised from inside the compiled program
    failed = jnp.logical_not(diffrax.is_successful(sol.result))
    return jax.tree.map(lambda y: jnp.where(failed, jnp.nan, y), sol.ys)


def integrate_batch(field: Callable, y0, t: np.ndarray, shared, per_sequence, solver: SolverConfig,
                    forward_mode: bool = False):
    """Solve B independent systems dy_i/dt = field(t, y_i, shared, per_sequence_i) on the grid `t`.

    Args:
      field: vector field of ONE system, `(t, y, shared, per_sequence) -> dy/dt` (for the symplectic solver a pair
        `(g, h)` of such fields, on y0 = (y_1, y_2) as in `integrate`).
      y0: initial states, leaves (B, ...).
      t: the data's time grid (T,), static.
      shared: arguments common to all systems (e.g. network parameters), a pytree.
      per_sequence: arguments of each system, leaves (B, ...).
      solver: the method.
      forward_mode: differentiable in forward mode instead of reverse mode (see `integrate`).

    Returns:
      y on the grid: leaves (B, T, ...).

    A fixed-step solver integrates the batch as one stacked system: the same arithmetic per system as B separate
    solves, but one loop whose matrix products cover the whole batch, and one cotangent of `shared` per step
    instead of B. An adaptive solver solves each system on its own (vmapped), so that its step sizes, and hence
    its result, never depend on the other sequences of its batch.
    """
    def batched(f):
        return lambda tt, y, args: jax.vmap(f, in_axes=(None, 0, None, 0))(tt, y, *args)

    if solver.adaptive:
        def one(y, arg):
            return integrate(lambda tt, yy, a: field(tt, yy, *a), y, t, (shared, arg), solver, forward_mode)

        return jax.vmap(one)(y0, per_sequence)
    stacked = tuple(batched(f) for f in field) if solver.name == SYMPLECTIC else batched(field)
    ys = integrate(stacked, y0, t, (shared, per_sequence), solver, forward_mode)
    return jax.tree.map(lambda y: jnp.swapaxes(y, 0, 1), ys)
