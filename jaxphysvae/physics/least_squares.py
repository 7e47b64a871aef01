"""The physics model alone fitted to each sequence by least squares: the baseline a physics-integrated VAE's inferred
parameters should beat.

For every sequence, the z_P on a grid over the model's physical range (`z_range`) whose solution from
`initial_state(x)` is closest to the observed sequence in squared error. The physics model's own parameters are
those `init` returns (for `Diffusion(observation_map=True)` the identity observation map) unless given: a trained
model's `params["physics"]` fits the physics path it learned (its observation map W, b), which is the inverse its
encoder is trained towards. The initial state must be read from the data: models that learn it
(`learned_initial_state`, such as the learned Hamiltonians) are refused.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxphysvae.config import SolverConfig
from jaxphysvae.errors import ConfigError, DataError
from jaxphysvae.physics.base import PhysicsModel
from jaxphysvae.physics.integrate import integrate_batch

# an accurate solver, so that the baseline's error is the physics model's, not the discretisation's
ACCURATE = SolverConfig("tsit5", substeps=4, rtol=1e-6, atol=1e-8)


class LeastSquaresFit(NamedTuple):
    """Per-sequence least-squares fits of a physics model.

    Attributes:
      z: (N, dim_z) the best z_P on the grid, in the physical units of `z_range`.
      x_hat: (N, C, T) the physics model's observations with that z_P.
      sse: (N,) their squared error summed over channels and time.
      grid: (G, dim_z) the candidates tried.
    """

    z: np.ndarray
    x_hat: np.ndarray
    sse: np.ndarray
    grid: np.ndarray


def candidate_grid(physics: PhysicsModel, points: int, spacing: str = "linear") -> np.ndarray:
    """The (points ** dim_z, dim_z) product grid over `physics.z_range`, each axis `points` values spaced "linear"ly
    or "log"arithmically (for a positive range spanning decades)."""
    if physics.z_range is None or physics.dim_z == 0:
        raise ConfigError(f"{type(physics).__name__} has no physical range of z_P to search (z_range)")
    if physics.learned_initial_state:
        raise ConfigError(f"{type(physics).__name__} learns its initial state: a least-squares fit needs "
                          f"initial_state(x)")
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ConfigError(f"grid points must be an integer >= 2, got {points!r}")
    lo, hi = (np.asarray(b, np.float64) for b in physics.z_range)
    if spacing == "linear":
        axes = [np.linspace(a, b, points) for a, b in zip(lo, hi)]
    elif spacing == "log":
        if np.any(lo <= 0):
            raise ConfigError(f"a log-spaced grid needs a positive range, got lower bounds {lo.tolist()}")
        axes = [np.geomspace(a, b, points) for a, b in zip(lo, hi)]
    else:
        raise ConfigError(f"unknown grid spacing {spacing!r}; expected 'linear' or 'log'")
    return np.array(list(itertools.product(*axes)), np.float32)


def least_squares(physics: PhysicsModel, x, dt: float, points: int = 1000, spacing: str = "linear",
                  solver: SolverConfig = ACCURATE, key: jax.Array | None = None,
                  chunk: int = 64, params=None) -> LeastSquaresFit:
    """Fit z_P to each sequence of x by a grid search over the physical range.

    Args:
      physics: the (incomplete) physics model, with a z_range and an `initial_state(x)`.
      x: (N, C, T) observed sequences; the first time step is t = 0.
      dt: the time step of the data.
      points: grid points per dimension of z_P (the grid has points ** dim_z candidates; its step bounds the
        resolution of the estimate).
      spacing: "linear" or "log" grid axes.
      solver: how each candidate's trajectory is integrated (default: adaptive Tsit5 at tight tolerances).
      key: the key of `physics.init` (default key 0), for models with parameters.
      chunk: candidates integrated at once (memory N x chunk x S x T).
      params: the physics model's parameters (default: `physics.init(key)`); a trained model's `params["physics"]`
        fits its learned physics. Must have the structure and shapes that `init` gives.

    Returns:
      A LeastSquaresFit.

    Raises:
      DataError: x not (N, C, T) with T >= 2, or not finite.
      ConfigError: a physics model without z_range or with a learned initial state, a bad grid, or `params` not
        shaped as the model's.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 3 or x.shape[-1] < 2:
        raise DataError(f"x must have shape (N, C, T) with T >= 2, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError("x holds NaN or Inf values")
    grid = candidate_grid(physics, points, spacing)
    params = _checked_params(physics, physics.init(jax.random.key(0) if key is None else key), params)
    t = np.arange(x.shape[-1], dtype=np.float64) * dt
    s0 = jax.vmap(physics.initial_state)(jnp.asarray(x))  # (N, S)
    field = lambda tt, y, p, z: physics.vector_field(p, tt, y, z)

    @jax.jit
    def sse_of(z_chunk):  # (K, dim_z) -> (K, N) squared error of every sequence under each candidate
        n, k = x.shape[0], z_chunk.shape[0]
        y0 = jnp.tile(s0, (k, 1))
        zs = jnp.repeat(z_chunk, n, axis=0)
        states = integrate_batch(field, y0, t, params, zs, solver)  # (K N, T, S)
        obs = jax.vmap(jax.vmap(lambda s: physics.observe(params, s)))(states)  # (K N, T, C)
        err = jnp.swapaxes(obs, 1, 2).reshape(k, n, *x.shape[1:]) - x[None]
        return jnp.sum(err**2, axis=(2, 3))

    padded = -(-len(grid) // chunk) * chunk
    candidates = np.concatenate([grid, np.repeat(grid[-1:], padded - len(grid), axis=0)])
    sse = np.concatenate([np.asarray(sse_of(candidates[i:i + chunk])) for i in range(0, padded, chunk)])[:len(grid)]
    best = np.argmin(np.where(np.isfinite(sse), sse, np.inf), axis=0)  # (N,)
    z = grid[best]

    @jax.jit
    def observe_fit(z_best):
        states = integrate_batch(field, s0, t, params, z_best, solver)
        return jnp.swapaxes(jax.vmap(jax.vmap(lambda s: physics.observe(params, s)))(states), 1, 2)

    return LeastSquaresFit(z, np.asarray(observe_fit(jnp.asarray(z))), sse[best, np.arange(x.shape[0])], grid)


def _checked_params(physics: PhysicsModel, initial, params):
    """`params` (default `initial`) as arrays, refused with a ConfigError unless shaped as `initial`."""
    if params is None:
        return initial
    shapes = lambda tree: jax.tree.map(np.shape, tree)
    try:
        same = jax.tree.structure(params) == jax.tree.structure(initial) and shapes(params) == shapes(initial)
    except (TypeError, ValueError):
        same = False
    if not same:
        raise ConfigError(f"params for {type(physics).__name__} must be shaped as its init gives, "
                          f"{shapes(initial)}; got {jax.tree.map(lambda a: np.shape(a), params)}")
    return jax.tree.map(jnp.asarray, params)
