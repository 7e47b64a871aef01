"""The damped Gauss-Newton (Levenberg-Marquardt) step shared by test-time code fitting (jaxphysvae.refine) and the
encoder's steps on the initial state (PhysVAE.refine_initial_state)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def damped_step(jac: Float[Array, "m n"], r: Float[Array, "m"], mu) -> Float[Array, "n"]:
    """delta (n,) solving (J^T J + mu diag(J^T J) + floor I) delta = J^T r, for the Jacobian `jac` (m, n) of a
    model's output and a residual `r` (m,): the Gauss-Newton step damped along the diagonal (the model's output
    moves by about jac @ delta towards r), plus a floor of 1e-9 of J^T J's mean diagonal (and 1e-30) for the
    directions the output ignores (a clipped parameter, a unit without effect, a kept one whose column is 0)."""
    a = jac.T @ jac
    floor = 1e-9 * jnp.trace(a) / a.shape[0] + 1e-30
    return jnp.linalg.solve(a + mu * jnp.diag(jnp.diag(a)) + floor * jnp.eye(a.shape[0]), jac.T @ r)
