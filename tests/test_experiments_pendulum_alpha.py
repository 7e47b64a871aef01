"""experiments/pendulum_alpha.py: the least-squares baseline recovers omega, and a quick run writes the curve."""

import json

import numpy as np
import pytest

from experiments import pendulum_alpha
from jaxphysvae.data import pendulum


def test_least_squares_recovers_omega_of_free_pendulums():
    omega = np.array([0.9, 1.7, 2.6, 3.4])
    theta0 = np.array([1.2, -0.6, 0.3, -1.4])
    t = np.arange(pendulum.NUM_STEPS) * pendulum.DT
    x = pendulum.simulate(theta0, omega, 0.0, 0.0, 1.0, t)[:, None, :, 0]  # the generator's own solver
    estimate, rmse = pendulum_alpha.least_squares_omega(x, pendulum.DT)
    step = (pendulum_alpha.OMEGA_RANGE[1] - pendulum_alpha.OMEGA_RANGE[0]) / 1499
    np.testing.assert_allclose(estimate, omega, atol=step)
    assert rmse < 1e-3


def test_quick_run_writes_the_curve_and_the_baselines(tmp_path):
    result = pendulum_alpha.main(["--quick", "--seeds", "0", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "pendulum_alpha.json").read_text())
    assert [r["alpha"] for r in written["alpha"]["rows"]] == list(pendulum_alpha.ALPHAS)
    assert all(r["seeds"] == 1 and np.isfinite(r["omega_mae"]) for r in written["alpha"]["rows"])
    test = pendulum.load("test", n=32)
    train = pendulum.load("train", n=64)
    assert written["baselines"]["training mean of omega"] == pytest.approx(
        np.abs(train.params["omega"].mean() - test.params["omega"]).mean())
    assert written["baselines"]["pendulum-phys-only"] == pytest.approx(
        json.loads((tmp_path / "phys-only" / "sweep.json").read_text())["members"][0]["test"]["omega_mae"])
    assert written == json.loads(json.dumps(result))
    assert "| alpha |" in (tmp_path / "pendulum_alpha.md").read_text() and (tmp_path / "pendulum_alpha.png").is_file()
