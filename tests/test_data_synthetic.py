import numpy as np
import pytest
import scipy.linalg

from jaxphysvae import data
from jaxphysvae.data import advdif, pendulum
from jaxphysvae.errors import DataError


def test_pendulum_shapes_params_and_ranges():
    ds = data.load("pendulum", "train", n=6)
    assert ds.x.shape == (6, 1, 50) and ds.x.dtype == np.float32
    assert ds.dt == 0.05 and ds.t[-1] == pytest.approx(2.45)
    for name, (lo, hi) in pendulum.RANGES.items():
        assert ds.params[name].shape == (6,)
        assert np.all((ds.params[name] >= lo) & (ds.params[name] <= hi))
    # the first observation is theta_0 plus noise of std 0.01
    assert np.max(np.abs(ds.x[:, 0, 0] - ds.params["theta0"])) < 0.05


@pytest.mark.parametrize("name", ["pendulum", "advdif"])
def test_generators_are_deterministic_by_seed_and_split(name, tmp_path):
    a = data.load(name, "valid", n=4, seed=3, data_dir=tmp_path / "a")
    b = data.load(name, "valid", n=4, seed=3, data_dir=tmp_path / "b")
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.allclose(a.x, data.load(name, "valid", n=4, seed=4, data_dir=tmp_path / "a").x)
    assert not np.allclose(a.x, data.load(name, "test", n=4, seed=3, data_dir=tmp_path / "a").x)


def test_cache_is_reused_written_atomically_and_regenerated_when_corrupt(tmp_path):
    first = data.load("pendulum", "test", n=3, data_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["pendulum-v1-test-n3-seed0.npz"]  # no temporary file left behind
    (tmp_path / files[0]).write_bytes(b"truncated")
    again = data.load("pendulum", "test", n=3, data_dir=tmp_path)
    np.testing.assert_array_equal(first.x, again.x)


def test_pendulum_energy_is_conserved_without_damping_and_forcing():
    t = np.arange(50) * 0.05
    omega = np.array([0.8, 2.0, 3.1])
    states = pendulum.simulate([1.5, -0.7, 0.3], omega, 0.0, 0.0, 5.0, t)
    theta, dtheta = states[..., 0], states[..., 1]
    energy = 0.5 * dtheta**2 - omega[:, None] ** 2 * np.cos(theta)
    assert np.max(np.abs(energy - energy[:, :1]) / omega[:, None] ** 2) < 1e-8
    # with damping the energy decreases
    damped = pendulum.simulate([1.5], [2.0], 0.5, 0.0, 5.0, t)
    e = 0.5 * damped[0, :, 1] ** 2 - 4.0 * np.cos(damped[0, :, 0])
    assert np.all(np.diff(e) < 0)


def test_pendulum_small_angle_matches_harmonic_oscillator():
    t = np.arange(50) * 0.05
    states = pendulum.simulate([1e-4], [2.0], 0.0, 0.0, 5.0, t)
    np.testing.assert_allclose(states[0, :, 0], 1e-4 * np.cos(2.0 * t), atol=2e-9)  # 2e-5 of the amplitude


@pytest.mark.parametrize("c", [0.0, 0.07])
def test_advdif_matches_matrix_exponential(c):
    n, dx, diffusion, t = advdif.NUM_POINTS, advdif.DX, 0.05, np.arange(50) * advdif.DT
    lap = (np.eye(n, k=1) - 2 * np.eye(n) + np.eye(n, k=-1)) / dx**2
    grad = (np.eye(n, k=1) - np.eye(n, k=-1)) / (2 * dx)
    y0 = advdif.initial_profile([1.2])[0]
    exact = np.stack([scipy.linalg.expm(ti * (diffusion * lap - c * grad)) @ y0 for ti in t])
    np.testing.assert_allclose(advdif.simulate([1.2], diffusion, c, t)[0], exact, atol=1e-9)
    if c == 0.0:
        fine_t = np.linspace(0.0, 1.0, 2001)
        y = advdif.simulate([1.2], diffusion, 0.0, fine_t)[0]
        mass = y.sum(axis=1)
        assert np.all(np.diff(mass) < 0)  # diffusion through the zero boundaries removes mass
        # d(mass)/dt = -D (y_0 + y_19) / dx^2: the flux through the two boundaries
        rate = np.gradient(mass, fine_t)[1:-1]
        predicted = -diffusion * (y[1:-1, 0] + y[1:-1, -1]) / dx**2
        np.testing.assert_allclose(rate, predicted, rtol=1e-3, atol=1e-6)


def test_advdif_dataset_layout():
    ds = data.load("advdif", "train", n=5)
    assert ds.x.shape == (5, 20, 50) and ds.num_channels == 20 and ds.dt == 0.02
    assert set(ds.params) == {"m", "D", "c"}
    # the first frame is m sin(pi x / x_19) plus noise of std 1e-3
    np.testing.assert_allclose(ds.x[:, :, 0], advdif.initial_profile(ds.params["m"]), atol=6e-3)


@pytest.mark.parametrize("name", ["pendulum", "advdif"])
def test_bad_requests_are_named(name):
    with pytest.raises(DataError, match="unknown split 'training'"):
        data.load(name, "training")
    with pytest.raises(DataError, match="positive integer"):
        data.load(name, "train", n=0)
    with pytest.raises(DataError, match="bad option"):
        data.load(name, "train", directory="x")
    with pytest.raises(DataError, match="unknown data set 'pendulumm'"):
        data.load("pendulumm", "train")
