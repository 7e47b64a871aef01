"""Shared machinery of the synthetic data generators: an accurate batched ODE solve, seeding, caching, noise."""

from __future__ import annotations

import os
from typing import Callable

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from jaxphysvae.data.cache import data_dir, load_npz, save_npz
from jaxphysvae.data.dataset import SPLITS, Dataset, check_split
from jaxphysvae.errors import DataError


def solve_accurately(field: Callable, y0: np.ndarray, args: np.ndarray, t: np.ndarray,
                     rtol: float = 1e-10, atol: float = 1e-10) -> np.ndarray:
    """Solve dy/dt = field(t, y, args) for a batch of initial states in float64, saving at the grid `t`.

    Uses diffrax's 8th-order Dormand-Prince method (the counterpart of the references' DOP853) with an adaptive
    step-size controller, vmapped over the batch.

    Args:
      field: vector field `(t, y, args) -> dy/dt` for one system, y of shape (D,).
      y0: initial states, shape (N, D).
      args: per-system parameters, shape (N, P).
      t: save times, shape (T,), t[0] the initial time.
      rtol, atol: tolerances of the step-size controller.

    Returns:
      float64 array of shape (N, T, D).
    """
    with jax.enable_x64(True):
        ts = jnp.asarray(t, jnp.float64)

        def one(y, a):
            sol = diffrax.diffeqsolve(
                diffrax.ODETerm(field), diffrax.Dopri8(), ts[0], ts[-1], ts[1] - ts[0], y, args=a,
                saveat=diffrax.SaveAt(ts=ts),
                stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=1_000_000)
            return sol.ys

        ys = jax.jit(jax.vmap(one))(jnp.asarray(y0, jnp.float64), jnp.asarray(args, jnp.float64))
        return np.asarray(ys)


def split_rng(seed: int, split: str) -> np.random.Generator:
    """An independent NumPy generator for each (seed, split) pair."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS.index(check_split(split))]))


def check_count(n, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError(f"{name}: number of sequences must be a positive integer, got {n!r}")
    return int(n)


def cached(name: str, version: int, split: str, n: int, seed: int, make: Callable[[], dict],
           directory: str | os.PathLike | None) -> tuple[dict, str]:
    """Load a generated split from the cache, or make it with `make()` and cache it atomically.

    Returns the arrays and the cache file's path.
    """
    path = data_dir(directory) / f"{name}-v{version}-{split}-n{n}-seed{seed}.npz"
    arrays = load_npz(path)
    if arrays is None:
        arrays = make()
        try:
            save_npz(path, **arrays)
        except OSError as e:  # a read-only cache directory must not stop the run
            return arrays, f"(not cached: {e})"
    return arrays, str(path)


def to_dataset(name: str, split: str, arrays: dict, dt: float, channels: tuple[str, ...], param_names,
               source: str) -> Dataset:
    return Dataset(name=name, split=split, x=arrays["x"], dt=dt, channels=channels,
                   params={k: arrays[k] for k in param_names}, source=source)
