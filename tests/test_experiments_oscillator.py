"""The worked example (experiments/oscillator.py) on a tiny budget, and its generator."""

import json

import numpy as np
import pytest
import scipy.integrate

from experiments import oscillator


def test_generated_oscillators_solve_their_equation():
    data = oscillator.generate(3, seed=1, noise=0.0)
    t = np.arange(oscillator.NUM_STEPS) * oscillator.DT
    for x, k, c in zip(data["x"][:, 0], data["k"], data["c"]):
        assert 1 <= k <= 4 and 0 <= c <= 0.4
        solved = scipy.integrate.solve_ivp(lambda _, y: [y[1], -k * y[0] - c * y[1]], (0, t[-1]), [x[0], 0.0],
                                           t_eval=t, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(x, solved.y[0], atol=1e-8)


def test_quick_run_writes_the_tables(tmp_path):
    result = oscillator.main(["--quick", "--alpha", "--out", str(tmp_path)])
    models = [r["model"] for r in result["rows"]]
    assert models == ["training mean of k", "least squares of x'' = -k x", "pendulum-phys-vae"]
    written = json.loads((tmp_path / "oscillator.json").read_text())
    assert written["rows"][0]["k_mae"] == pytest.approx(
        np.abs(np.load(tmp_path / "oscillator.npz")["param_k_test"]
               - np.load(tmp_path / "oscillator.npz")["param_k_train"].mean()).mean())
    assert [r["alpha"] for r in written["alpha"]["rows"]] == list(oscillator.ALPHAS)
    assert all(np.isfinite(r["k_mae"]) for r in written["alpha"]["rows"])
    assert "| alpha |" in (tmp_path / "oscillator.md").read_text() and (tmp_path / "oscillator_alpha.png").is_file()
