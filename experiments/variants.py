"""Every variant on the pendulum and on advection-diffusion (issue 14.1): reconstruction and physics-parameter errors
over seeds, beside the trivial and the least-squares baselines, with the learning curves.

    python -m experiments.variants --dataset pendulum [--variants phys-vae,nn-solver] [--seeds 0,1,2] [--epochs N]
    python -m experiments.variants --dataset advdif ...
    python -m experiments.variants --dataset pendulum --baselines-only          # no training: the baselines (seconds)
    python -m experiments.variants --dataset pendulum --variants nf --set lr=3e-4 --set grad_clip_norm=50

Per variant (the preset DATASET-VARIANT: VARIANTS below by default, or another such as advdif's nf-tuned): one
vectorised sweep over the seeds in OUT/DATASET/VARIANT, continued when it exists (--epochs may grow between calls: a
sweep trained for 2000 epochs continues to 5000). Test split, posterior mean of every latent, best-validation
checkpoint (docs/protocol.md). Baselines for the physics parameter (omega in rad/s; the diffusion coefficient D): the
prior mean (the centre of the model's range), the training split's mean, and the same incomplete physics fitted to
each test sequence by least squares (`jaxphysvae.physics.least_squares`, with its reconstruction RMSE). Learning
curves: each sweep's metrics.jsonl, the validation error averaged over seeds per epoch (figure), and in the table how
much the best validation error still fell over the last fifth of the epochs (the flattening the protocol asks for
when a budget is shorter than the references': 5000 epochs for the pendulum, 20000 for advection-diffusion). Writes
OUT/variants_DATASET.{json,md,png} and, with --results, experiments/results/ too. `--set KEY=VALUE` (as
`jaxphysvae train --set`) changes every listed variant: its rows read "PRESET (KEY=VALUE, ...)", its sweeps live in
OUT/DATASET/VARIANT+KEY=VALUE+..., and its tables in variants_DATASET_KEY=VALUE+..., beside (never over) those of the
presets as they are; --name NAME names the tables instead. A table holds the variants of its call only: a call for
other variants (or --baselines-only) under the name of a table of others is refused before it trains, so that a call
for one more variant needs its own --name.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from experiments import report
from experiments.sweeps import changed_label, changed_suffix, learning_curve, preset_sweep, quick_epochs
from jaxphysvae import data, presets
from jaxphysvae.config import apply_overrides
from jaxphysvae.errors import ConfigError
from jaxphysvae.physics import make_physics
from jaxphysvae.physics.least_squares import least_squares

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("nn-only", "nn-solver", "phys-only", "phys-nn", "phys-vae", "nf", "attnf-seq")
# the physics parameter each data set scores, and the least-squares grid over its range (D spans 40x: log-spaced)
PARAMETER = {"pendulum": ("omega", "linear", 1500), "advdif": ("D", "log", 1000)}
QUICK_SIZES = {"n_train": 32, "n_valid": 16, "n_test": 16}


def baselines(dataset: str, quick: bool = False) -> dict:
    """The physics parameter's error (MAE) of the prior mean, the training mean and the per-sequence least-squares
    fit of the data set's incomplete physics, on the test split; and the least-squares fits' reconstruction RMSE."""
    name, spacing, points = PARAMETER[dataset]
    sizes = {split: {"n": QUICK_SIZES[f"n_{split}"]} if quick else {} for split in ("train", "test")}
    train, test = data.load(dataset, "train", **sizes["train"]), data.load(dataset, "test", **sizes["test"])
    config, _ = presets.get(f"{dataset}-phys-vae")
    physics = make_physics(config.model, test.x.shape[1])
    truth = test.params[name]
    fit = least_squares(physics, test.x, test.dt, points=points, spacing=spacing)
    mae = lambda estimate: float(np.abs(estimate - truth).mean())
    return {"parameter": name,
            f"{name} MAE": {"prior mean": mae(float(physics.prior()[0][0])),
                            "training mean": mae(train.params[name].mean()),
                            "least squares of the model's physics": mae(fit.z[:, 0])},
            "least_squares_rmse": float(np.sqrt(fit.sse.sum() / test.x.size)),
            "least_squares_rel_err": float((np.abs(fit.z[:, 0] - truth) / np.abs(truth)).mean())}


def _variant(dataset: str, variant: str, seeds: list[int], epochs: int | None, target: Path, quick: bool,
             sets: tuple[str, ...]) -> dict:
    preset = f"{dataset}-{variant}"
    changes = dict(**presets.TOY_WIDTHS, **QUICK_SIZES, batch_size=16, eval_batch_size=16) if quick else None
    result = preset_sweep(preset, {"seed": seeds}, target, epochs, changes, progress=not quick, sets=sets)
    name = PARAMETER[dataset][0]
    members = result["members"]
    row = {"model": changed_label(preset, sets), "seeds": len(members), "epochs": result["epochs"],
           "best_epoch": [m["best_epoch"] for m in members], "rollbacks": [len(m["rollbacks"]) for m in members],
           "diverged": sum(m["status"] != "completed" for m in members), "seconds": result["seconds"]}
    for key in ("rmse", "mae", "sse_per_seq", f"{name}_mae", f"{name}_rel_err"):
        values = [m["test"][key] for m in members if key in m["test"]]
        if values:
            row[key], row[f"{key}_std"] = float(np.mean(values)), float(np.std(values))
    row["curve"] = learning_curve(target)
    return row


def run(dataset: str, out: Path, variants, seeds: list[int], epochs: int | None, quick: bool = False,
        sets: tuple[str, ...] = ()) -> dict:
    """The baselines and every variant's row (each preset changed by the `key=value` strings `sets`)."""
    started = time.time()
    result = {"dataset": dataset, "seeds": seeds, "sets": list(sets), "baselines": baselines(dataset, quick),
              "rows": []}
    for variant in variants:
        target = out / dataset / "+".join((variant, *sets))
        result["rows"].append(_variant(dataset, variant, seeds, epochs, target, quick, sets))
    result["seconds"] = time.time() - started
    return result


def markdown(result: dict) -> str:
    base = result["baselines"]
    name = base["parameter"]
    stat = lambda r, key, digits: (f"{r[key]:.{digits}f} +- {r[key + '_std']:.{digits}f}" if key in r else "-")
    lines = [f"{result['dataset']}: test split, posterior mean, best-validation checkpoint; mean +- std over seeds.",
             "", f"| model | seeds | epochs (best per seed) | rollbacks | diverged | test RMSE | MAE | squared error "
             f"per sequence | {name} MAE | {name} rel. error | best valid still falling (last 20 %) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        curve = r.get("curve") or {}
        drop = "-" if curve.get("tail_drop") is None else f"{100 * curve['tail_drop']:.1f} %"
        best = ", ".join(map(str, r["best_epoch"]))
        lines.append(f"| {r['model']} | {r['seeds']} | {r['epochs']} ({best}) | {sum(r['rollbacks'])} | "
                     f"{r['diverged']} | {stat(r, 'rmse', 4)} | {stat(r, 'mae', 4)} | {stat(r, 'sse_per_seq', 4)} | "
                     f"{stat(r, name + '_mae', 4)} | {stat(r, name + '_rel_err', 3)} | {drop} |")
    lines += ["", f"Baselines ({name} MAE on the same test split): " + "; ".join(
        f"{k} {v:.4f}" for k, v in base[f"{name} MAE"].items()) +
        f" (its relative error {base['least_squares_rel_err']:.3f}, its reconstruction RMSE "
        f"{base['least_squares_rmse']:.4f})."]
    return "\n".join(lines) + "\n"


def figure(result: dict, path: Path) -> None:
    """Each variant's validation error (mean over seeds) against the epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in result["rows"]:
        if r.get("curve"):
            ax.plot(r["curve"]["epoch"], r["curve"]["valid_sse_per_seq"], label=r["model"], lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation squared error\nper sequence (mean over seeds)")
    ax.set_title(f"{result['dataset']}: learning curves")
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    report.save_figure(fig, path, dpi=120)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=tuple(PARAMETER), default="pendulum")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated (default {','.join(VARIANTS)}; any preset DATASET-VARIANT, "
                        "e.g. nf-tuned on advdif)")
    parser.add_argument("--baselines-only", action="store_true", help="no training: the baselines only")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per variant (default: the preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change every variant (repeatable; the keys of `jaxphysvae train --set`)")
    parser.add_argument("--out", default="runs/variants", help="directory of the sweeps and the tables")
    parser.add_argument("--quick", action="store_true", help="toy widths, small splits, 2 epochs (the test's)")
    parser.add_argument("--results", action="store_true", help="also write experiments/results/variants_DATASET.*")
    parser.add_argument("--name", type=report.file_name, default=None,
                        help="the tables' file name (NAME.json, .md, .png; default variants_DATASET[_KEY=VALUE...])")
    args = parser.parse_args(argv)
    variants = [] if args.baselines_only else [v for v in args.variants.split(",") if v]
    for v in variants:
        if f"{args.dataset}-{v}" not in presets.PRESETS:
            known = [n.removeprefix(f"{args.dataset}-") for n in presets.PRESETS if n.startswith(f"{args.dataset}-")]
            parser.error(f"--variants: unknown variant {v!r} of {args.dataset}; expected some of {', '.join(known)}")
        try:
            apply_overrides(*presets.get(f"{args.dataset}-{v}"), args.set)
        except ConfigError as e:
            parser.error(f"--set: {e}")
    epochs = quick_epochs(args.quick, args.epochs)
    out = Path(args.out)
    name = args.name or f"variants_{args.dataset}" + changed_suffix(args.set)
    targets = [out] + ([RESULTS] if args.results else [])
    report.check_same_models(name, targets, [changed_label(f"{args.dataset}-{v}", args.set) for v in variants])
    result = run(args.dataset, out, variants, [int(s) for s in args.seeds.split(",")], epochs, args.quick,
                 tuple(args.set))
    text = markdown(result)
    report.write(name, result, text, targets, lambda path: figure(result, path))
    print(text)
    return result


if __name__ == "__main__":
    from experiments.command import run_command
    run_command(main)
