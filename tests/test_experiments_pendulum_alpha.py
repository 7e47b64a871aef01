"""experiments/pendulum_alpha.py: a quick run writes the curve beside the baselines."""

import json

import numpy as np
import pytest

from experiments import pendulum_alpha
from jaxphysvae.data import pendulum


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
