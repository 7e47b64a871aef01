"""Counterfactuals and extrapolation of trained pendulum models, measured against the generator's truth.

    python -m experiments.pendulum_probes runs/pendulum-phys-vae-seed0 runs/sweep-pendulum-nn-solver ... [--results]

Counterfactual (phys-VAE's pendulum_cntfact notebook, with numbers): for the first N test pendulums, the inferred
omega times each of the notebook's factors (0.2 ... 3.0) is decoded (x_PAB; the other latents at their posterior
mean) and compared with the trajectory the generator simulates with the true omega times the same factor and every
other true parameter (theta_0, damping, forcing) kept, noise-free. The forcing amplitude is A omega^2 in the
generator, so it scales with omega. Models without a physics latent have nothing to change and are left out.

Extrapolation: the ODE part of each model (x_PA: the physics with the in-ODE correction; the residual network has
the training window's length) integrated from the inferred initial state to HORIZON_FACTOR times the window, against
the generator's continuation; RMSE per window of T steps.

Writes OUT/pendulum_probes.{json,md,png} (default experiments/results/ with --results, else the current directory).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from jaxphysvae import files
from jaxphysvae.data import pendulum
from jaxphysvae.predict import predict
from jaxphysvae.sweep import load_any, parse_member

RESULTS = Path(__file__).resolve().parent / "results"
FACTORS = (0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 2.5, 3.0)  # the reference notebook's
HORIZON_FACTOR = 4


def _truth(ds, index, omega_scale: float, t: np.ndarray) -> np.ndarray:
    p = {k: np.asarray(v[index], np.float64) for k, v in ds.params.items()}
    states = pendulum.simulate(p["theta0"], p["omega"] * omega_scale, p["gamma"], p["A"], p["f"], t)
    return states[:, None, :, 0]  # (N, 1, T)


def probe(run: str, n: int = 100) -> dict:
    """Counterfactual and extrapolation errors (RMSE, radians) of one pendulum run on its first n test pendulums."""
    config, _, model, _, params, splits, record = load_any(run)
    ds = splits["test"]
    if ds.name != "pendulum":
        raise SystemExit(f"{run}: not a pendulum run (data set {ds.name!r})")
    index = np.arange(min(n, ds.num_sequences))
    x = ds.x[index]
    steps = ds.num_steps
    base = predict(model, params, x, batch_size=config.schedule.eval_batch_size, horizon=HORIZON_FACTOR * steps)
    name = record.get("preset") or Path(run).name
    if "seed" in record and "preset" not in record:  # a sweep member's row: the model is the sweep
        name = parse_member(run)[0].name
    out = {"model": name, "seed": record.get("seed"), "run": str(run), "n": int(len(index))}
    rmse = lambda a, b: float(np.sqrt(np.mean((a - b) ** 2)))
    if model.layout.dims.phy:
        rows = []
        for factor in FACTORS:
            decoded = predict(model, params, x, batch_size=config.schedule.eval_batch_size,
                              z_phy=base["z_phy_mean"] * np.float32(factor))
            truth = _truth(ds, index, factor, ds.t)
            rows.append({"factor": factor, "rmse_PAB": rmse(decoded["x_PAB"], truth),
                         "rmse_P": rmse(decoded["x_P"], truth),
                         "rmse_unchanged": rmse(base["x_PAB"], truth)})  # the baseline: omega left as inferred
        out["counterfactual"] = rows
    truth = _truth(ds, index, 1.0, base["t_long"])
    out["extrapolation"] = [{"window": w + 1, "steps": [w * steps, (w + 1) * steps],
                             "rmse_PA": rmse(base["x_PA_long"][..., w * steps:(w + 1) * steps],
                                             truth[..., w * steps:(w + 1) * steps]),
                             "rms_truth": rmse(0.0, truth[..., w * steps:(w + 1) * steps])}  # predicting 0
                            for w in range(HORIZON_FACTOR)]
    out["omega_mae"] = float(np.abs(base["omega"] - ds.params["omega"][index]).mean()) if "omega" in base else None
    return out


def _groups(results: list[dict]) -> dict[str, list[dict]]:
    """The results by model (the seeds of one sweep, or runs of one preset, together)."""
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r["model"], []).append(r)
    return groups


def _stat(values) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def markdown(results: list[dict]) -> str:
    groups = _groups(results)
    cell = lambda values: "{:.3f} +- {:.3f}".format(*_stat(values))
    lines = ["Counterfactual RMSE (rad) of x_PAB against the generator with omega x factor, first "
             f"{results[0]['n']} test pendulums, mean +- std over seeds:", "",
             "| model | seeds | " + " | ".join(f"x{f:g}" for f in FACTORS) + " |",
             "|---|---|" + "---|" * len(FACTORS)]
    for name, rs in groups.items():
        if "counterfactual" in rs[0]:
            for key, label in (("rmse_PAB", name), ("rmse_unchanged", f"{name}, omega left unchanged")):
                lines.append(f"| {label} | {len(rs)} | " + " | ".join(
                    cell([r["counterfactual"][i][key] for r in rs]) for i in range(len(FACTORS))) + " |")
    lines += ["", f"Extrapolation RMSE (rad) of the ODE part x_PA per window of the training length, to "
              f"{HORIZON_FACTOR}x (window 1 is the training window), mean +- std over seeds:", "",
              "| model | seeds | " + " | ".join(f"window {w + 1}" for w in range(HORIZON_FACTOR)) + " |",
              "|---|---|" + "---|" * HORIZON_FACTOR]
    for name, rs in groups.items():
        lines.append(f"| {name} | {len(rs)} | " + " | ".join(
            cell([r["extrapolation"][w]["rmse_PA"] for r in rs]) for w in range(HORIZON_FACTOR)) + " |")
    first = results[0]["extrapolation"]  # the same pendulums for every model
    lines.append("| predicting 0 (the truth's RMS) | - | " + " | ".join(f"{e['rms_truth']:.3f}" for e in first) + " |")
    return "\n".join(lines) + "\n"


def figure(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, rs in _groups(results).items():
        if "counterfactual" in rs[0]:
            stats = [_stat([r["counterfactual"][i]["rmse_PAB"] for r in rs]) for i in range(len(FACTORS))]
            left.errorbar(FACTORS, *zip(*stats), fmt="o-", ms=3, label=name)
        stats = [_stat([r["extrapolation"][w]["rmse_PA"] for r in rs]) for w in range(HORIZON_FACTOR)]
        right.errorbar(range(1, HORIZON_FACTOR + 1), *zip(*stats), fmt="o-", ms=3, label=name)
    left.set(xlabel="omega factor", ylabel="RMSE (rad)", title="counterfactual x_PAB")
    right.set(xlabel="window (x training length)", ylabel="RMSE (rad)", title="extrapolation x_PA")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="pendulum run directories, sweep directories (every member), or "
                                                "SWEEP_DIR:M for member M of a sweep")
    parser.add_argument("--n", type=int, default=100, help="test pendulums probed (the first N)")
    parser.add_argument("--out", default=None, help="output directory (default: experiments/results with --results, "
                                                    "else the current directory)")
    parser.add_argument("--results", action="store_true")
    args = parser.parse_args(argv)
    runs = []
    for run in args.runs:  # a sweep directory stands for all its members
        sweep_file = Path(run) / "sweep.json"
        count = len(json.loads(sweep_file.read_text())["members"]) if sweep_file.is_file() else 0
        runs += [f"{run}:{m}" for m in range(count)] or [run]
    results = [probe(run, args.n) for run in runs]
    out = Path(args.out) if args.out else (RESULTS if args.results else Path("."))
    files.write_json(out / "pendulum_probes.json", results)
    text = markdown(results)
    with files.atomic_path(out / "pendulum_probes.md") as tmp:
        tmp.write_text(text)
    figure(results, out / "pendulum_probes.png")
    print(text)
    return results


if __name__ == "__main__":
    main()
