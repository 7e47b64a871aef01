"""The forced damped pendulum of phys-VAE (METHOD.md section 5).

    theta'' = -gamma theta' - omega^2 sin(theta) + A omega^2 cos(2 pi f t),   theta'(0) = 0,

observed as theta (radians) at T = 50 points with dt = 0.05 s, plus Gaussian noise of std 0.01. Per sequence,
uniformly: theta_0 in [-1.57, 1.57], omega in [0.785, 3.14] rad/s, gamma in [0, 0.8] 1/s, A in [0, 40],
f in [3.14, 6.28] Hz. Solved with 8th-order Dormand-Prince at tolerances 1e-10 in float64.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxphysvae.data.dataset import Dataset, check_split
from jaxphysvae.data.synthetic import cached, check_count, solve_accurately, split_rng, to_dataset

NAME = "pendulum"
VERSION = 1
DT = 0.05
NUM_STEPS = 50
NOISE_STD = 0.01
SIZES = {"train": 1000, "valid": 500, "test": 1000}
RANGES = {"theta0": (-1.57, 1.57), "omega": (0.785, 3.14), "gamma": (0.0, 0.8), "A": (0.0, 40.0),
          "f": (3.14, 6.28)}
PARAMS = tuple(RANGES)


def vector_field(t, y, args):
    """d(theta, theta')/dt for one pendulum; args = (omega, gamma, A, f)."""
    theta, dtheta = y[0], y[1]
    omega, gamma, amp, freq = args[0], args[1], args[2], args[3]
    ddtheta = -gamma * dtheta - omega**2 * jnp.sin(theta) + amp * omega**2 * jnp.cos(2 * jnp.pi * freq * t)
    return jnp.stack([dtheta, ddtheta])


def simulate(theta0, omega, gamma, amp, freq, t) -> np.ndarray:
    """Noise-free states (theta, theta') of shape (N, T, 2), float64; parameters broadcast to shape (N,)."""
    *params, theta0 = np.broadcast_arrays(omega, gamma, amp, freq, np.atleast_1d(theta0))
    y0 = np.stack([theta0, np.zeros_like(theta0)], axis=1).astype(np.float64)
    args = np.stack(params, axis=1).astype(np.float64)
    return solve_accurately(vector_field, y0, args, np.asarray(t, np.float64))


def generate(n: int, rng: np.random.Generator, noise_std: float = NOISE_STD,
             ranges: dict | None = None) -> dict[str, np.ndarray]:
    """n sequences: 'x' of shape (n, 1, T) float32 and each true parameter of shape (n,).

    `ranges` overrides some parameter ranges, e.g. {"gamma": (0, 0), "A": (0, 0)} for a free, undamped pendulum.
    """
    params = {k: rng.uniform(lo, hi, n) for k, (lo, hi) in {**RANGES, **(ranges or {})}.items()}
    states = simulate(params["theta0"], params["omega"], params["gamma"], params["A"], params["f"],
                      np.arange(NUM_STEPS) * DT)
    theta = states[:, :, 0] + noise_std * rng.standard_normal((n, NUM_STEPS))
    return {"x": theta[:, None, :].astype(np.float32), **{k: v.astype(np.float32) for k, v in params.items()}}


def load(split: str, n: int | None = None, seed: int = 0, data_dir=None) -> Dataset:
    """The `split` of the pendulum data, generated deterministically from `seed` and cached under `data_dir`."""
    n = check_count(SIZES[check_split(split)] if n is None else n, NAME)
    arrays, path = cached(NAME, VERSION, split, n, seed, lambda: generate(n, split_rng(seed, split)), data_dir)
    return to_dataset(NAME, split, arrays, DT, ("theta",), PARAMS,
                      f"generated (forced damped pendulum, seed {seed}); cache {path}")
