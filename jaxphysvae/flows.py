"""Planar normalizing flows (Rezende & Mohamed 2015) as distrax bijectors, with amortised parameters.

One planar step maps z (..., d) to z + u_hat tanh(w^T z + b), where u_hat = u + (m(w^T u) - w^T u) w / ||w||^2 and
m(a) = -1 + margin + softplus(a), so that w^T u_hat >= -1 + margin and the map is invertible; its log-determinant
is log|1 + u_hat^T psi| with psi = (1 - tanh^2(w^T z + b)) w, evaluated as
log(h^2 + (1 - h^2) (margin + softplus(w^T u))), h = tanh(w^T z + b), which is the same number without cancellation
near the singular boundary. With margin = 0 (Rezende & Mohamed's constraint, the published code's) the bound is
only reached in the limit, but training can drive softplus(w^T u) below float precision, where the map is singular
and its log-determinant -inf (docs/divergence.md); a margin > 0 bounds every step's log-determinant below by
log(margin). Parameters may carry batch dimensions (one flow per sequence, produced by the encoder).
"""

from __future__ import annotations

from typing import Sequence

import distrax
import jax
import jax.numpy as jnp


def constrained_dot(u: jax.Array, w: jax.Array, margin: float = 0.0) -> jax.Array:
    """w^T u_hat = m(w^T u) = -1 + margin + softplus(w^T u) >= -1 + margin, shape (...): the exact value, free of the
    rounding of the product w^T u_hat (which can fall below -1 in float32 when |w^T u| is large)."""
    return -1.0 + margin + jax.nn.softplus(jnp.sum(w * u, axis=-1))


def constrain(u: jax.Array, w: jax.Array, margin: float = 0.0) -> jax.Array:
    """u_hat, the projection of u that guarantees w^T u_hat >= -1 + margin (shapes (..., d))."""
    wu = jnp.sum(w * u, axis=-1, keepdims=True)
    return u + (constrained_dot(u, w, margin)[..., None] - wu) * w / (jnp.sum(w * w, axis=-1, keepdims=True) + 1e-12)


class Planar(distrax.Bijector):
    """One planar step with parameters u, w of shape (..., d) and b of shape (...); events are vectors (..., d);
    `margin` >= 0 keeps w^T u_hat >= -1 + margin.

    `forward_and_log_det` is closed form; `inverse_and_log_det` solves the monotone scalar equation for
    a = w^T z by bisection to float precision (used to evaluate densities, not in training).
    """

    def __init__(self, u: jax.Array, w: jax.Array, b: jax.Array, margin: float = 0.0, bisection_steps: int = 80):
        super().__init__(event_ndims_in=1)
        self.u_hat = constrain(u, w, margin)
        self.wu_hat = constrained_dot(u, w, margin)
        self.one_plus_wu_hat = margin + jax.nn.softplus(jnp.sum(w * u, axis=-1))  # without cancellation
        self.w = w
        self.b = b
        self.bisection_steps = bisection_steps

    def forward_and_log_det(self, z):
        a = jnp.sum(self.w * z, axis=-1) + self.b
        h = jnp.tanh(a)
        y = z + self.u_hat * h[..., None]
        # 1 + (1 - h^2) w^T u_hat = h^2 + (1 - h^2) (margin + softplus(w^T u)): the same value without the
        # cancellation of 1 + w^T u_hat near the singular boundary w^T u_hat -> -1; positive unless softplus
        # underflows with margin 0.
        log_det = jnp.log(h**2 + (1.0 - h**2) * self.one_plus_wu_hat)
        return y, log_det

    def inverse_and_log_det(self, y):
        # w^T y = a + (w^T u_hat) tanh(a + b) with a = w^T z: increasing in a, and |a - w^T y| <= |w^T u_hat|.
        wy = jnp.sum(self.w * y, axis=-1)
        wu = self.wu_hat
        lo, hi = wy - jnp.abs(wu) - 1e-6, wy + jnp.abs(wu) + 1e-6

        def bisect(_, bounds):
            lo, hi = bounds
            mid = 0.5 * (lo + hi)
            above = mid + wu * jnp.tanh(mid + self.b) > wy
            return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

        lo, hi = jax.lax.fori_loop(0, self.bisection_steps, bisect, (lo, hi))
        a = 0.5 * (lo + hi)
        z = y - self.u_hat * jnp.tanh(a + self.b)[..., None]
        _, log_det = self.forward_and_log_det(z)
        return z, -log_det


def chain(params: Sequence[tuple[jax.Array, jax.Array, jax.Array]], margin: float = 0.0) -> distrax.Bijector:
    """The composition of planar steps, applied in the order given (distrax.Chain applies its list in reverse)."""
    return distrax.Chain([Planar(u, w, b, margin) for u, w, b in reversed(list(params))])


def split_params(raw: jax.Array, steps: int, dim: int) -> list[tuple[jax.Array, jax.Array, jax.Array]]:
    """Cut an encoder output of shape (..., steps * (2 dim + 1)) into `steps` triples (u, w, b), for `chain`."""
    u, w, b = stack_params(raw, steps, dim)
    return [(u[k], w[k], b[k]) for k in range(steps)]


def stack_params(raw: jax.Array, steps: int, dim: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The same cut as stacked arrays, step axis first: u, w (steps, ..., dim) and b (steps, ...)."""
    raw = jnp.moveaxis(raw.reshape(raw.shape[:-1] + (steps, 2 * dim + 1)), -2, 0)
    return raw[..., :dim], raw[..., dim:2 * dim], raw[..., 2 * dim]


def flow_forward(z0: jax.Array, params: tuple[jax.Array, jax.Array, jax.Array],
                 margin: float = 0.0) -> tuple[jax.Array, jax.Array]:
    """Push z0 (..., d) through the planar steps of `params` (from `stack_params`, step axis first), in order;
    returns z_K and the summed log|det J| (...). One step is traced once and scanned over, so the compiled program
    does not grow with the number of steps."""

    def step(carry, p):
        z, total = carry
        z, log_det = Planar(*p, margin=margin).forward_and_log_det(z)
        return (z, total + log_det), None

    (z, total), _ = jax.lax.scan(step, (z0, jnp.zeros(z0.shape[:-1], z0.dtype)), params)
    return z, total
