"""experiments/probes.py on a tiny run: counterfactual and extrapolation errors against the generator."""

import json

import numpy as np
import pytest

from experiments import probes
from jaxphysvae.cli import main
from jaxphysvae.data import advdif, pendulum
from jaxphysvae.fit import load_run
from jaxphysvae.physics.least_squares import least_squares
from jaxphysvae.predict import predict
from tests.helpers import CLI_SMALL


def test_probes_measure_against_the_generator(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--preset", "pendulum-phys-vae", "--epochs", "1", "--out", str(run), "--no-progress",
                 *CLI_SMALL]) == 0
    results = probes.main([str(run), "--n", "5", "--out", str(tmp_path / "out")])
    written = json.loads((tmp_path / "out" / "pendulum_probes.json").read_text())
    assert written == json.loads(json.dumps(results))
    assert [c["factor"] for c in written[0]["counterfactual"]] == list(probes.FACTORS)
    assert (tmp_path / "out" / "pendulum_probes.png").stat().st_size > 0
    # one entry recomputed: factor 2 and window 3, by hand from predict and the generator
    config, _, model, _, params, splits, _ = load_run(run)
    ds = splits["test"]
    x, p = ds.x[:5], {k: v[:5].astype(np.float64) for k, v in ds.params.items()}
    mean = predict(model, params, x)
    doubled = predict(model, params, x, z_phy=2 * mean["z_phy_mean"])["x_PAB"][:, 0]
    truth = pendulum.simulate(p["theta0"], 2 * p["omega"], p["gamma"], p["A"], p["f"], ds.t)[..., 0]
    factor2 = written[0]["counterfactual"][probes.FACTORS.index(2.0)]
    assert factor2["rmse_PAB"] == pytest.approx(np.sqrt(np.mean((doubled - truth) ** 2)), abs=1e-6)
    long = predict(model, params, x, horizon=200)["x_PA_long"][:, 0, 100:150]
    t = np.arange(200) * pendulum.DT
    truth = pendulum.simulate(p["theta0"], p["omega"], p["gamma"], p["A"], p["f"], t)[:, 100:150, 0]
    assert written[0]["extrapolation"][2]["rmse_PA"] == pytest.approx(np.sqrt(np.mean((long - truth) ** 2)), abs=1e-6)
    # the pendulum's physics learns no parameters: one least-squares fit, with its initial ones
    fits = written[0]["parameter_fits"]
    assert set(fits) == {"inferred", "least_squares_initial"}
    assert fits["inferred"]["offset"] == pytest.approx(np.mean(mean["omega"] - p["omega"]), abs=1e-6)


def test_a_sweep_members_label_names_what_varies_but_the_seed(tmp_path):
    members = [{"alpha": a, "beta": 0.1, "seed": s} for a in (0.0, 0.1) for s in (0, 1)]
    (tmp_path / "alpha-sweep").mkdir()
    (tmp_path / "alpha-sweep" / "sweep.json").write_text(json.dumps({"members": members}))
    labels = [probes.member_label(f"{tmp_path / 'alpha-sweep'}:{m}") for m in range(4)]
    assert labels == ["alpha-sweep, alpha=0", "alpha-sweep, alpha=0", "alpha-sweep, alpha=0.1", "alpha-sweep, alpha=0.1"]
    # a sweep that records its preset: named by the preset its configuration equals (the base's --set changes made
    # it the tuned preset), else by the base preset and what differs from it
    from jaxphysvae import presets
    from jaxphysvae.config import HParams
    config, hparams = presets.get("advdif-nf-tuned")
    member = {**HParams.create(**hparams).to_json(), "seed": 0}
    for name, config in (("tuned", config), ("other", config.replace(flow_aux2=3))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "sweep.json").write_text(json.dumps(
            {"preset": "advdif-nf", "config": config.replace(epochs=7).to_json(), "members": [member]}))
    assert probes.member_label(f"{tmp_path / 'tuned'}:0") == "advdif-nf-tuned"
    assert probes.member_label(f"{tmp_path / 'other'}:0") == ("advdif-nf, observation_map=False, flow_phy=0, "
                                                             "flow_aux2=3, z_phy_space=logit, grad_clip_norm=50, "
                                                             "lr=0.0003")


def test_advection_diffusion_probes_scale_D_and_extrapolate_to_1000_steps(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--preset", "advdif-phys-vae", "--epochs", "1", "--out", str(run), "--no-progress",
                 *CLI_SMALL]) == 0
    results = probes.main([str(run), "--n", "3", "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "advdif_probes.png").stat().st_size > 0
    assert results[0]["param"] == "D" and len(results[0]["extrapolation"]) == 20
    # recomputed by hand from predict and the generator: D x 0.4, and the last window (steps 950 to 1000)
    _, _, model, _, params, splits, _ = load_run(run)
    ds = splits["test"]
    x, p = ds.x[:3], {k: v[:3].astype(np.float64) for k, v in ds.params.items()}
    mean = predict(model, params, x)
    scaled = predict(model, params, x, z_phy=0.4 * mean["z_phy_mean"])["x_PAB"]
    truth = advdif.simulate(p["m"], 0.4 * p["D"], p["c"], ds.t).transpose(0, 2, 1)
    factor = results[0]["counterfactual"][probes.FACTORS.index(0.4)]
    assert factor["rmse_PAB"] == pytest.approx(np.sqrt(np.mean((scaled - truth) ** 2)), abs=1e-6)
    long = predict(model, params, x, horizon=1000)["x_PA_long"][..., 950:]
    truth = advdif.simulate(p["m"], p["D"], p["c"], np.arange(1000) * advdif.DT)[:, 950:].transpose(0, 2, 1)
    assert results[0]["extrapolation"][-1]["rmse_PA"] == pytest.approx(np.sqrt(np.mean((long - truth) ** 2)),
                                                                       abs=1e-6)
    # the learned observation map's fit, by hand: least squares through params["physics"] on the same log grid
    learned = least_squares(model.physics, x, ds.dt, points=1000, spacing="log", params=params["physics"]).z[:, 0]
    fits = results[0]["parameter_fits"]["least_squares_learned"]
    assert fits["offset"] == pytest.approx(np.mean(learned - p["D"]), abs=1e-6)
    assert fits["inferred_mae_to_it"] == pytest.approx(np.mean(np.abs(mean["D"] - learned)), abs=1e-6)
    assert "inferred to it: MAE" in (tmp_path / "out" / "advdif_probes.md").read_text()


def test_the_initial_parameter_fit_is_shared_only_by_runs_with_the_same_physics_and_sequences(monkeypatch):
    from types import SimpleNamespace

    from jaxphysvae.physics.systems import Diffusion
    calls = []

    def fake_least_squares(physics, x, dt, points, spacing, params):  # D = mean of x times the range's top
        calls.append(params)
        return SimpleNamespace(z=np.asarray(x).mean(axis=(1, 2))[:, None] * physics.z_range[1])

    monkeypatch.setattr(probes, "least_squares", fake_least_squares)
    rng = np.random.default_rng(0)
    x, other_x = rng.uniform(size=(2, 4, 3, 5)).astype(np.float32)
    truth, inferred = np.zeros(4), np.linspace(0, 1, 4)
    fits = lambda physics, seqs, cache: probes.parameter_fits(SimpleNamespace(physics=physics), {"physics": {}},
                                                              seqs, 0.1, "advdif", truth, inferred, cache)
    cache = {}
    first = fits(Diffusion(), x, cache)
    assert first["least_squares_initial"]["offset"] == pytest.approx(0.2 * x.mean(), rel=1e-5)
    assert fits(Diffusion(), x, cache) == first and len(calls) == 1  # same physics and sequences: computed once
    assert fits(Diffusion(), other_x, cache)["least_squares_initial"]["offset"] == pytest.approx(
        0.2 * other_x.mean(), rel=1e-5)
    wider = fits(Diffusion(d_range=(5e-3, 0.4)), x, cache)["least_squares_initial"]["offset"]
    assert wider == pytest.approx(0.4 * x.mean(), rel=1e-5) and len(calls) == 3

    class Unpicklable(Diffusion):  # attributes that do not pickle: fitted every time, never shared
        def __init__(self):
            super().__init__()
            self.rule = lambda y: y

    assert probes.initial_fit_key(Unpicklable(), x, 0.1, "advdif") is None
    fits(Unpicklable(), x, cache), fits(Unpicklable(), x, cache)
    assert len(calls) == 5 and len(cache) == 3
