"""The advection-diffusion data of phys-VAE (METHOD.md section 5).

    dy/dt = D y_xx - c y_x   on 20 grid points x_i = i dx, dx = 0.1, with zero ghost cells y_{-1} = y_{20} = 0,

discretised by central differences, y_0(x) = m sin(pi x / x_19). Observed at T = 50 points, dt = 0.02, plus
Gaussian noise of std 1e-3. Per sequence, uniformly: m in [0.5, 1.5], D in [0.01, 0.1], c in [0.01, 0.1].

Sign convention: this generator uses the physical advection term -c y_x (transport towards +x for c > 0). The
reference generator's kernel flip gives +c y_x; both are valid tests of a diffusion-only physics model.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxphysvae.data.dataset import Dataset, check_split
from jaxphysvae.data.synthetic import cached, check_count, solve_accurately, split_rng, to_dataset
from jaxphysvae.physics.systems import laplacian

NAME = "advdif"
VERSION = 1
NUM_POINTS = 20
DX = 0.1
DT = 0.02
NUM_STEPS = 50
NOISE_STD = 1e-3
SIZES = {"train": 1000, "valid": 500, "test": 1000}
RANGES = {"m": (0.5, 1.5), "D": (0.01, 0.1), "c": (0.01, 0.1)}
PARAMS = tuple(RANGES)
GRID = np.arange(NUM_POINTS) * DX


def gradient(y, dx=DX):
    """Central first difference of y along its last axis, with zero ghost cells."""
    padded = jnp.pad(y, [(0, 0)] * (y.ndim - 1) + [(1, 1)])
    return (padded[..., 2:] - padded[..., :-2]) / (2 * dx)


def vector_field(t, y, args):
    """dy/dt for one profile y of shape (20,); args = (D, c)."""
    return args[0] * laplacian(y, DX) - args[1] * gradient(y)


def initial_profile(m) -> np.ndarray:
    """y_0 for amplitudes m of shape (N,): shape (N, 20)."""
    return np.asarray(m, np.float64)[:, None] * np.sin(np.pi * GRID / GRID[-1])[None, :]


def simulate(m, diffusion, advection, t) -> np.ndarray:
    """Noise-free profiles of shape (N, T, 20), float64; parameters broadcast to shape (N,)."""
    *params, m = np.broadcast_arrays(diffusion, advection, np.atleast_1d(m))
    args = np.stack(params, axis=1).astype(np.float64)
    return solve_accurately(vector_field, initial_profile(m), args, np.asarray(t, np.float64))


def generate(n: int, rng: np.random.Generator, noise_std: float = NOISE_STD,
             ranges: dict | None = None) -> dict[str, np.ndarray]:
    """n sequences: 'x' of shape (n, 20, T) float32 (channels = grid points) and each true parameter (n,).

    `ranges` overrides some parameter ranges, e.g. {"c": (0, 0)} for pure diffusion.
    """
    params = {k: rng.uniform(lo, hi, n) for k, (lo, hi) in {**RANGES, **(ranges or {})}.items()}
    y = simulate(params["m"], params["D"], params["c"], np.arange(NUM_STEPS) * DT)
    y = y + noise_std * rng.standard_normal(y.shape)
    return {"x": np.swapaxes(y, 1, 2).astype(np.float32), **{k: v.astype(np.float32) for k, v in params.items()}}


def load(split: str, n: int | None = None, seed: int = 0, data_dir=None) -> Dataset:
    """The `split` of the advection-diffusion data, generated deterministically from `seed`, cached."""
    n = check_count(SIZES[check_split(split)] if n is None else n, NAME)
    arrays, path = cached(NAME, VERSION, split, n, seed, lambda: generate(n, split_rng(seed, split)), data_dir)
    channels = tuple(f"y(x={x:.1f})" for x in GRID)
    return to_dataset(NAME, split, arrays, DT, channels, PARAMS,
                      f"generated (advection-diffusion, -c y_x convention, seed {seed}); cache {path}")
