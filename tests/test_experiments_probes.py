"""experiments/pendulum_probes.py on a tiny run: counterfactual and extrapolation errors against the generator."""

import json

import numpy as np
import pytest

from experiments import pendulum_probes
from jaxphysvae.cli import main
from jaxphysvae.data import pendulum
from jaxphysvae.fit import load_run
from jaxphysvae.predict import predict
from tests.helpers import CLI_SMALL


def test_probes_measure_against_the_generator(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--preset", "pendulum-phys-vae", "--epochs", "1", "--out", str(run), "--no-progress",
                 *CLI_SMALL]) == 0
    results = pendulum_probes.main([str(run), "--n", "5", "--out", str(tmp_path / "out")])
    written = json.loads((tmp_path / "out" / "pendulum_probes.json").read_text())
    assert written == json.loads(json.dumps(results))
    assert [c["factor"] for c in written[0]["counterfactual"]] == list(pendulum_probes.FACTORS)
    assert (tmp_path / "out" / "pendulum_probes.png").stat().st_size > 0
    # one entry recomputed: factor 2 and window 3, by hand from predict and the generator
    config, _, model, _, params, splits, _ = load_run(run)
    ds = splits["test"]
    x, p = ds.x[:5], {k: v[:5].astype(np.float64) for k, v in ds.params.items()}
    mean = predict(model, params, x)
    doubled = predict(model, params, x, z_phy=2 * mean["z_phy_mean"])["x_PAB"][:, 0]
    truth = pendulum.simulate(p["theta0"], 2 * p["omega"], p["gamma"], p["A"], p["f"], ds.t)[..., 0]
    factor2 = written[0]["counterfactual"][pendulum_probes.FACTORS.index(2.0)]
    assert factor2["rmse_PAB"] == pytest.approx(np.sqrt(np.mean((doubled - truth) ** 2)), abs=1e-6)
    long = predict(model, params, x, horizon=200)["x_PA_long"][:, 0, 100:150]
    t = np.arange(200) * pendulum.DT
    truth = pendulum.simulate(p["theta0"], p["omega"], p["gamma"], p["A"], p["f"], t)[:, 100:150, 0]
    assert written[0]["extrapolation"][2]["rmse_PA"] == pytest.approx(np.sqrt(np.mean((long - truth) ** 2)), abs=1e-6)
