"""Counterfactuals and extrapolation of trained pendulum or advection-diffusion models, measured against the
generator's truth.

    python -m experiments.probes runs/pendulum-phys-vae-seed0 runs/sweep-pendulum-nn-solver ... [--results]
    python -m experiments.probes runs/sweep-advdif-phys-vae runs/sweep-advdif-nn-solver ... [--results]

Counterfactual (phys-VAE's pendulum_cntfact notebook, with numbers): for the first N test sequences, the inferred
physics parameter (the pendulum's omega, the diffusion coefficient D) times each of the notebook's factors (0.2 ...
3.0) is decoded (x_PAB; the other latents at their posterior mean) and compared with the trajectory the generator
simulates with the true parameter times the same factor and every other true parameter kept (the pendulum's theta_0,
damping and forcing; the profile's amplitude m and advection c), noise-free. The pendulum's forcing amplitude is
A omega^2 in the generator, so it scales with omega. Models without a physics latent have nothing to change and are
left out.

Extrapolation (phys-VAE's advdif_extpol notebook, with numbers): the ODE part of each model (x_PA: the physics with
the in-ODE correction; the residual network has the training window's length) integrated from the inferred initial
state past the training window, against the generator's continuation: 4x the window for the pendulum (200 steps),
20x for advection-diffusion (1000 steps, as the notebook); RMSE per window of T steps.

Parameter fits (what the inferred parameter follows): the physics parameter inferred for the same sequences against
two least-squares fits of the model's physics path (`jaxphysvae.physics.least_squares` on the grid of
experiments.variants): with the physics' initial parameters (for advection-diffusion the identity observation), and
with the parameters the model learned (the observation W y + b): the path the physics encoder is trained to invert
(R_DA2 on simulations of it; R_DA1 pulls the unmixed data it reads towards it). Error and mean offset of each against
the truth, and how far the inferred parameter lies from the learned fit. The fit with the initial parameters
depends only on the physics model and the sequences, so runs that share both (the seeds of a sweep) compute it once.

Writes OUT/DATASET_probes.{json,md,png} (default experiments/results/ with --results, else the current directory).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from experiments.locomotion import sweep_label
from experiments.variants import PARAMETER
from jaxphysvae import files, presets
from jaxphysvae.config import HParams
from jaxphysvae.data import advdif, pendulum
from jaxphysvae.physics.least_squares import least_squares
from jaxphysvae.predict import predict
from jaxphysvae.sweep import load_any, parse_member

RESULTS = Path(__file__).resolve().parent / "results"
FACTORS = (0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 2.5, 3.0)  # the reference notebook's


@dataclass(frozen=True)
class System:
    """What the probes change and extend for one data set.

    param: the physics parameter scaled by the counterfactual factors (the model's and the generator's name).
    horizon: windows of the training length the ODE part is integrated over (the first is the training window).
    shown: the windows (from 1) the Markdown table shows; the JSON and the figure have every window.
    truth: (params, scale, t) -> the noise-free truth (N, C, len(t)) with `param` times scale, params the test
      sequences' true parameters (float64 arrays of shape (N,)).
    unit, sequences: the data's unit and what a sequence is, for the tables.
    """

    param: str
    horizon: int
    shown: tuple[int, ...]
    truth: Callable[[dict, float, np.ndarray], np.ndarray]
    unit: str
    sequences: str


def _pendulum_truth(p: dict, scale: float, t: np.ndarray) -> np.ndarray:
    states = pendulum.simulate(p["theta0"], p["omega"] * scale, p["gamma"], p["A"], p["f"], t)
    return states[:, None, :, 0]


def _advdif_truth(p: dict, scale: float, t: np.ndarray) -> np.ndarray:
    return advdif.simulate(p["m"], p["D"] * scale, p["c"], t).transpose(0, 2, 1)


SYSTEMS = {"pendulum": System("omega", 4, (1, 2, 3, 4), _pendulum_truth, "rad", "pendulums"),
           "advdif": System("D", 20, (1, 2, 5, 10, 20), _advdif_truth, "profile units", "profiles")}


def member_label(run: str) -> str:
    """"MODEL, key=value, ..." for member "SWEEP_DIR:M": the hyper-parameters that vary across the sweep's members,
    the seed aside, so that a sweep over alpha gives one model per alpha and its seeds group together. MODEL is the
    preset the sweep's configuration and fixed hyper-parameters equal, else its preset and what differs from it
    ("advdif-nf, lr=0.0003, ..."), else the directory's name."""
    directory, member = parse_member(run)
    result = json.loads((directory / "sweep.json").read_text())
    members = result["members"]
    varying = [k for k in HParams._fields if len({m.get(k) for m in members}) > 1]
    fixed = {k: v for k, v in members[0].items() if k in HParams._fields and k not in varying}
    model = directory.name
    if result.get("preset") in presets.PRESETS and "config" in result:
        equal = (n for n in (result["preset"], *presets.PRESETS) if not presets.differences(n, result["config"], fixed))
        model = next(equal, None) or sweep_label(result, directory.name, fixed)
    return ", ".join([model] + [f"{k}={members[member][k]:.3g}" for k in varying])


def initial_fit_key(physics, x: np.ndarray, dt: float, dataset: str) -> str | None:
    """A digest of what the least-squares fit with the physics' initial parameters depends on: the physics model's
    class and attributes (its grid, range, options), the sequences x (N, C, T), their time step and the data set's
    search grid; None when the model's attributes do not pickle (its fits are then not shared)."""
    try:
        described = pickle.dumps((type(physics).__module__, type(physics).__qualname__, vars(physics)))
    except (pickle.PicklingError, TypeError, AttributeError):
        return None
    x = np.ascontiguousarray(x)
    digest = hashlib.sha256(described)
    digest.update(repr((x.shape, x.dtype.str, float(dt), dataset)).encode())
    digest.update(x.tobytes())
    return digest.hexdigest()


def parameter_fits(model, params, x: np.ndarray, dt: float, dataset: str, truth: np.ndarray,
                   inferred: np.ndarray, cache: dict | None = None) -> dict:
    """The inferred physics parameter (N,) of sequences x (N, C, T) against least-squares fits of the model's
    physics path to them: {"inferred", "least_squares_initial" and, when the physics has parameters of its own,
    "least_squares_learned"}, each {"mae", "offset"} (the mean of estimate - truth); the learned fit also with
    "inferred_mae_to_it" and "correlation_with_inferred" (None for a constant estimate). `cache` (a dict, filled
    in) keeps the initial-parameter fits by `initial_fit_key`, for runs that share physics and sequences."""
    name, spacing, points = PARAMETER[dataset]
    k = model.physics.param_names.index(name)
    fit = lambda physics_params: least_squares(model.physics, x, dt, points=points, spacing=spacing,
                                               params=physics_params).z[:, k].astype(np.float64)
    stats = lambda estimate: {"mae": float(np.abs(estimate - truth).mean()), "offset": float((estimate - truth).mean())}
    key = None if cache is None else initial_fit_key(model.physics, x, dt, dataset)
    initial = cache[key] if key is not None and key in cache else fit(None)
    if key is not None:
        cache[key] = initial
    out = {"inferred": stats(inferred), "least_squares_initial": stats(initial)}
    if jax.tree.leaves(params["physics"]):
        learned = fit(params["physics"])
        varies = np.std(inferred) > 0 and np.std(learned) > 0
        out["least_squares_learned"] = {**stats(learned),
                                        "inferred_mae_to_it": float(np.abs(inferred - learned).mean()),
                                        "correlation_with_inferred": (float(np.corrcoef(inferred, learned)[0, 1])
                                                                      if varies else None)}
    return out


def probe(run: str, n: int = 100, cache: dict | None = None) -> dict:
    """Counterfactual and extrapolation errors (RMSE, in the data's units) of one pendulum or advection-diffusion run
    on its first n test sequences; `cache` as parameter_fits'."""
    config, _, model, _, params, splits, record = load_any(run)
    ds = splits["test"]
    if ds.name not in SYSTEMS:
        raise SystemExit(f"{run}: data set {ds.name!r} has no generator to probe against; probes know "
                         f"{', '.join(SYSTEMS)}")
    system = SYSTEMS[ds.name]
    index = np.arange(min(n, ds.num_sequences))
    x = ds.x[index]
    true = {k: np.asarray(v[index], np.float64) for k, v in ds.params.items()}
    steps = ds.num_steps
    batch = config.schedule.eval_batch_size
    base = predict(model, params, x, batch_size=batch, horizon=system.horizon * steps)
    name = record.get("preset") or Path(run).name
    if "seed" in record and "preset" not in record:  # a sweep member's row: the model is the sweep
        name = member_label(run)
    out = {"model": name, "dataset": ds.name, "param": system.param, "seed": record.get("seed"), "run": str(run),
           "n": int(len(index))}
    rmse = lambda a, b: float(np.sqrt(np.mean((a - b) ** 2)))
    if model.layout.dims.phy:
        rows = []
        for factor in FACTORS:
            decoded = predict(model, params, x, batch_size=batch, z_phy=base["z_phy_mean"] * np.float32(factor))
            truth = system.truth(true, factor, ds.t)
            rows.append({"factor": factor, "rmse_PAB": rmse(decoded["x_PAB"], truth),
                         "rmse_P": rmse(decoded["x_P"], truth),
                         "rmse_unchanged": rmse(base["x_PAB"], truth)})  # the baseline: the parameter as inferred
        out["counterfactual"] = rows
        out["parameter_fits"] = parameter_fits(model, params, x, ds.dt, ds.name, true[system.param],
                                               np.asarray(base[system.param], np.float64), cache)
    truth = system.truth(true, 1.0, base["t_long"])
    out["extrapolation"] = [{"window": w + 1, "steps": [w * steps, (w + 1) * steps],
                             "rmse_PA": rmse(base["x_PA_long"][..., w * steps:(w + 1) * steps],
                                             truth[..., w * steps:(w + 1) * steps]),
                             "rms_truth": rmse(0.0, truth[..., w * steps:(w + 1) * steps])}  # predicting 0
                            for w in range(system.horizon)]
    out["param_mae"] = (float(np.abs(base[system.param] - true[system.param]).mean()) if system.param in base
                        else None)
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
    system, param = SYSTEMS[results[0]["dataset"]], results[0]["param"]
    unit, shown = system.unit, system.shown
    cell = lambda values: "{:.3f} +- {:.3f}".format(*_stat(values))
    lines = [f"Counterfactual RMSE ({unit}) of x_PAB against the generator with {param} x factor, first "
             f"{results[0]['n']} test {system.sequences}, mean +- std over seeds:", "",
             "| model | seeds | " + " | ".join(f"x{f:g}" for f in FACTORS) + " |",
             "|---|---|" + "---|" * len(FACTORS)]
    for name, rs in groups.items():
        if "counterfactual" in rs[0]:
            for key, label in (("rmse_PAB", name), ("rmse_unchanged", f"{name}, {param} left unchanged")):
                lines.append(f"| {label} | {len(rs)} | " + " | ".join(
                    cell([r["counterfactual"][i][key] for r in rs]) for i in range(len(FACTORS))) + " |")
    steps = results[0]["extrapolation"][0]["steps"][1]
    lines += ["", f"Extrapolation RMSE ({unit}) of the ODE part x_PA per window of the training length ({steps} "
              f"steps), to {system.horizon}x (window 1 is the training window), mean +- std over seeds:", "",
              "| model | seeds | " + " | ".join(f"window {w}" for w in shown) + " |",
              "|---|---|" + "---|" * len(shown)]
    for name, rs in groups.items():
        lines.append(f"| {name} | {len(rs)} | " + " | ".join(
            cell([r["extrapolation"][w - 1]["rmse_PA"] for r in rs]) for w in shown) + " |")
    first = results[0]["extrapolation"]  # the same sequences for every model
    lines.append("| predicting 0 (the truth's RMS) | - | " + " | ".join(f"{first[w - 1]['rms_truth']:.3f}"
                                                                         for w in shown) + " |")
    fitted = {name: rs for name, rs in groups.items() if "parameter_fits" in rs[0]}
    if fitted:
        lines += ["", f"The inferred {param} and least-squares fits of each model's physics path to the same "
                      f"{system.sequences}: with the physics' initial parameters, and with those the model learned "
                      f"(where it learns any); MAE and mean offset (estimate - truth), mean +- std over seeds:", "",
                  "| model | seeds | inferred: MAE | offset | least squares, initial parameters: MAE | offset | "
                  "least squares, learned parameters: MAE | offset | inferred to it: MAE | correlation |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        cell = lambda values: "{:.4f} +- {:.4f}".format(*_stat(values))  # D's least squares: about 0.001
        for name, rs in fitted.items():
            fits = [r["parameter_fits"] for r in rs]
            cells = [cell([f[part][key] for f in fits]) for part in ("inferred", "least_squares_initial")
                     for key in ("mae", "offset")]
            if all("least_squares_learned" in f for f in fits):
                learned = [f["least_squares_learned"] for f in fits]
                cells += [cell([f[key] for f in learned]) for key in ("mae", "offset", "inferred_mae_to_it")]
                correlations = [f["correlation_with_inferred"] for f in learned]
                cells.append(", ".join("-" if c is None else f"{c:.3f}" for c in correlations))
            else:
                cells += ["-"] * 4
            lines.append(f"| {name} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    param, unit = results[0]["param"], SYSTEMS[results[0]["dataset"]].unit
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, rs in _groups(results).items():
        if "counterfactual" in rs[0]:
            stats = [_stat([r["counterfactual"][i]["rmse_PAB"] for r in rs]) for i in range(len(FACTORS))]
            left.errorbar(FACTORS, *zip(*stats), fmt="o-", ms=3, label=name)
        windows = range(1, len(rs[0]["extrapolation"]) + 1)
        stats = [_stat([r["extrapolation"][w - 1]["rmse_PA"] for r in rs]) for w in windows]
        right.errorbar(windows, *zip(*stats), fmt="o-", ms=3, label=name)
    right.plot(windows, [e["rms_truth"] for e in results[0]["extrapolation"]], "k:", label="predicting 0")
    first = next((r for r in results if "counterfactual" in r), None)
    if first is not None:
        left.plot(FACTORS, [c["rmse_unchanged"] for c in first["counterfactual"]], "k:",
                  label=f"{first['model']}, {param} left unchanged")
        left.legend(fontsize=6)
    left.set(xlabel=f"{param} factor", ylabel=f"RMSE ({unit})", title="counterfactual x_PAB")
    right.set(xlabel="window (x training length)", ylabel=f"RMSE ({unit})", title="extrapolation x_PA")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="pendulum or advection-diffusion run directories, sweep directories "
                                                "(every member), or SWEEP_DIR:M for member M of a sweep")
    parser.add_argument("--n", type=int, default=100, help="test sequences probed (the first N)")
    parser.add_argument("--out", default=None, help="output directory (default: experiments/results with --results, "
                                                    "else the current directory)")
    parser.add_argument("--results", action="store_true")
    args = parser.parse_args(argv)
    runs = []
    for run in args.runs:  # a sweep directory stands for all its members
        sweep_file = Path(run) / "sweep.json"
        count = len(json.loads(sweep_file.read_text())["members"]) if sweep_file.is_file() else 0
        runs += [f"{run}:{m}" for m in range(count)] or [run]
    initial_fits = {}  # shared by the runs of one physics model and data (a sweep's seeds)
    results = [probe(run, args.n, initial_fits) for run in runs]
    datasets = sorted({r["dataset"] for r in results})
    if len(datasets) > 1:
        raise SystemExit(f"the runs are of several data sets ({', '.join(datasets)}); probe one data set at a time")
    out = Path(args.out) if args.out else (RESULTS if args.results else Path("."))
    stem = f"{datasets[0]}_probes"
    files.write_json(out / f"{stem}.json", results)
    text = markdown(results)
    with files.atomic_path(out / f"{stem}.md") as tmp:
        tmp.write_text(text)
    figure(results, out / f"{stem}.png")
    print(text)
    return results


if __name__ == "__main__":
    from experiments.command import run_command
    run_command(main)
