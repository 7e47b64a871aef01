"""jaxphysvae.physics.least_squares: the physics model alone fitted to each sequence, checked against solutions
computed independently (closed forms, the pendulum generator's own solver)."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.data import pendulum
from jaxphysvae.errors import ConfigError, DataError
from jaxphysvae.physics import Diffusion, Hamiltonian, Pendulum, PhysicsModel
from jaxphysvae.physics.least_squares import candidate_grid, least_squares


class DampedSpring(PhysicsModel):
    """x'' = -k x - c x', z_P = (k, c): a two-dimensional search."""

    def __init__(self):
        super().__init__(dim_z=2, state_size=2, z_range=((1.0, 0.0), (4.0, 0.4)), param_names=("k", "c"))

    def vector_field(self, params, t, state, z):
        return jnp.stack([state[1], -z[0] * state[0] - z[1] * state[1]])

    def initial_state(self, x):
        return jnp.stack([x[0, 0], jnp.zeros_like(x[0, 0])])

    def observe(self, params, state):
        return state[:1]


def test_free_pendulums_give_back_their_omega():
    omega = np.array([0.9, 1.7, 2.6, 3.4])
    t = np.arange(pendulum.NUM_STEPS) * pendulum.DT
    x = pendulum.simulate(np.array([1.2, -0.6, 0.3, -1.4]), omega, 0.0, 0.0, 1.0, t)[:, None, :, 0]
    fit = least_squares(Pendulum(), x, pendulum.DT, points=1500)
    step = (3.53 - 0.392) / 1499
    np.testing.assert_allclose(fit.z[:, 0], omega, atol=step)
    assert fit.x_hat.shape == x.shape and np.sqrt(fit.sse.sum() / x.size) < 1e-3
    np.testing.assert_allclose(fit.sse, ((fit.x_hat - x) ** 2).sum(axis=(1, 2)), rtol=1e-3, atol=1e-9)


def test_damped_springs_give_back_both_parameters_on_a_product_grid():
    k, c, x0 = np.array([1.3, 2.2, 3.7]), np.array([0.05, 0.2, 0.35]), np.array([1.0, -0.8, 0.6])
    t = np.arange(60) * 0.1
    w = np.sqrt(k - c**2 / 4)  # the under-damped closed form with x'(0) = 0
    x = (x0[:, None] * np.exp(-c[:, None] * t / 2) * (np.cos(w[:, None] * t)
                                                      + c[:, None] / (2 * w[:, None]) * np.sin(w[:, None] * t)))
    fit = least_squares(DampedSpring(), x[:, None], 0.1, points=61)
    assert fit.grid.shape == (61 * 61, 2)
    np.testing.assert_allclose(fit.z[:, 0], k, atol=3.0 / 60 / 2 + 1e-6)
    np.testing.assert_allclose(fit.z[:, 1], c, atol=0.4 / 60 / 2 + 1e-6)


N, DX, DT, STEPS = 20, 0.1, 0.02, 50  # the advection-diffusion data's grid and step
LOG_STEP = np.log((0.2 / 5e-3) ** (1 / 399))  # a 400-point log grid over Diffusion's range of D


def diffusing_modes(d: np.ndarray) -> np.ndarray:
    """(len(d), N, STEPS) closed-form solutions with zero ghost cells: sin(pi m j / (N + 1)) (modes 1 and 3, the
    third at half the amplitude) decays as exp(-D 4 / dx^2 sin^2(pi m / (2 (N + 1))) t)."""
    j, t = np.arange(1, N + 1), np.arange(STEPS) * DT
    y = np.zeros((len(d), N, STEPS))
    for m, amplitude in ((1, 1.0), (3, 0.5)):
        rate = 4 / DX**2 * np.sin(np.pi * m / (2 * (N + 1))) ** 2
        y += amplitude * np.sin(np.pi * m * j / (N + 1))[None, :, None] * np.exp(-d[:, None, None] * rate * t)
    return y


def test_diffusion_on_a_log_grid_gives_back_D():
    d = np.array([0.007, 0.04, 0.15])
    fit = least_squares(Diffusion(num_points=N, dx=DX), diffusing_modes(d), DT, points=400, spacing="log")
    np.testing.assert_allclose(np.log(fit.z[:, 0]), np.log(d), atol=LOG_STEP)
    assert np.allclose(fit.grid[[0, -1], 0], [5e-3, 0.2])


def test_given_parameters_fit_the_physics_through_a_trained_observation_map():
    """Frames 1.. of diffusing modes seen through a known W y + b (frame 0 is the state the fit starts from, as a
    trained model reads it): with that W and b the fit gives D back; with init's identity map D comes out elsewhere
    (so the parameters are used)."""
    d = np.array([0.02, 0.05, 0.12])
    y = diffusing_modes(d)
    W = 1.2 * np.eye(N) + 0.15 * np.eye(N, k=1) + 0.15 * np.eye(N, k=-1)
    b = np.linspace(-0.05, 0.05, N)
    x = np.concatenate([y[..., :1], np.einsum("ij,bjt->bit", W, y[..., 1:]) + b[:, None]], axis=-1)
    physics = Diffusion(num_points=N, dx=DX, observation_map=True)
    fit = least_squares(physics, x, DT, points=400, spacing="log", params={"W": W, "b": b})
    np.testing.assert_allclose(np.log(fit.z[:, 0]), np.log(d), atol=LOG_STEP)
    np.testing.assert_allclose(fit.x_hat[..., 1:], x[..., 1:], atol=0.02)
    identity = least_squares(physics, x, DT, points=400, spacing="log")
    assert np.all(np.abs(np.log(identity.z[:, 0] / d)) > 10 * LOG_STEP)


@pytest.mark.parametrize("physics, x, options, error, match", [
    (Hamiltonian(channels=1, dim_z=0), np.zeros((2, 1, 5)), {}, ConfigError, "no physical range"),
    (Pendulum(), np.zeros((2, 5)), {}, DataError, r"shape \(N, C, T\)"),
    (Pendulum(), np.full((2, 1, 5), np.nan), {}, DataError, "NaN or Inf"),
    (Pendulum(), np.zeros((2, 1, 5)), {"points": 1}, ConfigError, "grid points"),
    (Pendulum(), np.zeros((2, 1, 5)), {"spacing": "cubic"}, ConfigError, "unknown grid spacing"),
    (Diffusion(observation_map=True), np.zeros((2, 20, 5)), {"params": {"W": np.eye(20)}}, ConfigError,
     "must be shaped as its init gives"),
    (Diffusion(observation_map=True), np.zeros((2, 20, 5)), {"params": {"W": np.eye(3), "b": np.zeros(3)}},
     ConfigError, "must be shaped as its init gives"),
])
def test_bad_input_is_named(physics, x, options, error, match):
    with pytest.raises(error, match=match):
        least_squares(physics, x, 0.1, **options)


class LearnedStart(DampedSpring):
    def __init__(self):
        PhysicsModel.__init__(self, dim_z=2, state_size=2, z_range=((1.0, 0.0), (4.0, 0.4)),
                              learned_initial_state=True)


def test_a_learned_initial_state_or_a_non_positive_log_range_is_refused():
    with pytest.raises(ConfigError, match="learns its initial state"):
        candidate_grid(LearnedStart(), 10)
    with pytest.raises(ConfigError, match="positive range"):
        candidate_grid(DampedSpring(), 10, "log")
