"""Locomotion reconstruction table: our presets against the reference baselines of METHOD.md section 7.

    python -m experiments.locomotion --train [--presets P,...]   # sweep presets over 3 seeds (long), then collect
    python -m experiments.locomotion runs/locomotion/*       # collect run or sweep directories into the table
    python -m experiments.locomotion --train --quick --sweeps /tmp/loco --out /tmp/loco   # a smoke run (the test's)

A sweep directory is one row: the mean +- standard deviation over its members (seeds), with each member's best
epoch and the rollbacks it needed; a run directory is a row of one seed. Each model is also scored with every test
stride's code fitted to it by --refine-steps Adam steps (default 200; 0 skips it) on its reconstruction error, the
decoder fixed (jaxphysvae.refine), as PCA's projection fits its code: the "fitted code" column (MAE / RMSE /
squared error).

Baselines (all zeros, mean training stride, PCA with k components fitted on train) are recomputed here from the
data; the published PyTorch figures are quoted from METHOD.md. Protocol: test split (344 strides), best-validation
checkpoint, posterior mean of every latent, errors in radians; a "batch" attention context is evaluated in batches
of 344 (the whole test split) in file order. --train sweeps each preset into SWEEPS/PRESET (--sweeps, default
runs/locomotion), continuing a sweep that is there. Writes OUT/NAME.{json,md} (default
experiments/results/locomotion; --name: another name, for another set of runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from experiments import report
from experiments.sweeps import QUICK_EPOCHS, preset_sweep, quick_epochs
from jaxphysvae import data, presets
from jaxphysvae.config import HParams
from jaxphysvae.evaluation import reconstruction_errors
from jaxphysvae.files import atomic_path
from jaxphysvae.refine import refine

RESULTS = Path(__file__).resolve().parent / "results"
# the published configurations, then the same models tuned on validation (jaxphysvae.presets.TUNED)
PRESETS = ("locomotion-phys-vae-takeishi", "locomotion-nn-only", "locomotion-phys-vae", "locomotion-nf",
           "locomotion-attnf", "locomotion-attnf-seq", "locomotion-phys-vae-tuned", "locomotion-nf-tuned",
           "locomotion-attnf-tuned", "locomotion-attnf-seq-tuned")
QUICK_REFINE_STEPS = 5  # --quick
PUBLISHED = [  # METHOD.md section 7: the published PyTorch code on this split
    ("published phys-VAE NN-only (3000 epochs, best 782)", 0.0143, 0.0190, 0.110, 0.10),
    ("published phys-VAE NN + Hamiltonian + R_ppc (3000, best 1535)", 0.0128, 0.0171, 0.0885, 0.94),
    ("published attentive NF-VAE (noise on, one stochastic pass; best 368)", 0.0133, 0.0177, 0.0947, 2.0),
]


def baselines(train: np.ndarray | None = None, test: np.ndarray | None = None,
              components=(5, 15, 21, 23, 30)) -> list[dict]:
    """All zeros, the mean training stride and PCA with each number of `components` fitted on the training strides,
    scored on the test strides (default: the packaged published split), with each one's code size (the numbers it
    keeps per stride)."""
    train = data.load("locomotion", "train").x if train is None else train
    test = data.load("locomotion", "test").x if test is None else test
    rows = [{"model": "all zeros", "code_size": 0, **reconstruction_errors(np.zeros_like(test), test)},
            {"model": "mean training stride", "code_size": 0,
             **reconstruction_errors(np.broadcast_to(train.mean(0), test.shape), test)}]
    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    mean = flat_train.mean(0)
    _, _, vt = np.linalg.svd(flat_train - mean, full_matrices=False)
    for k in components:
        basis = vt[:k]
        recon = (flat_test - mean) @ basis.T @ basis + mean
        rows.append({"model": f"PCA, {k} components (fitted on train)", "code_size": k,
                     **reconstruction_errors(recon.reshape(test.shape), test)})
    return rows


def code_size(config: dict, num_channels: int = 3) -> int:
    """The numbers per stride a model with stored configuration `config` (config.json's "config") encodes: the
    dimensions of its latents (z_P, z_A1, z_A2) plus its learned initial ODE state, if any."""
    from jaxphysvae.config import Config
    from jaxphysvae.latents import Layout
    from jaxphysvae.physics import make_physics
    model = Config.from_json(config).model
    physics = make_physics(model, num_channels)
    return sum(Layout.of(model, physics).dims) + (physics.state_size if physics.learned_initial_state else 0)


def preset_of(config: dict) -> str | None:
    """The preset whose configuration a stored one equals (epochs aside), for records from before sweeps named
    their preset."""
    from jaxphysvae.config import resumable
    for name in PRESETS:
        if resumable(presets.get(name)[0].to_json()) == resumable(config):
            return name
    return None


def sweep_label(result: dict, fallback: str, hparams: dict | None = None) -> str:
    """A sweep's model as "PRESET, key=value, ..." (what its configuration and hyper-parameters change from the
    preset; `hparams` default: its first member's), or `fallback` when no preset has its configuration."""
    preset = result.get("preset") or preset_of(result["config"])
    if preset not in presets.PRESETS:
        return fallback
    member = {k: v for k, v in result["members"][0].items() if k in HParams._fields} if hparams is None else hparams
    changes = presets.differences(preset, result["config"], member)
    return ", ".join([preset] + [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in changes.items()])


def _sweep_row(sweep_dir: Path) -> dict:
    result = json.loads((sweep_dir / "sweep.json").read_text())
    result.setdefault("preset", preset_of(result["config"]))
    members = result["members"]
    stat = lambda key, split="test": (float(np.mean([m[split][key] for m in members])),
                                      float(np.std([m[split][key] for m in members])))
    row = {"model": result.get("preset") or sweep_dir.name, "run": str(sweep_dir), "seeds": len(members),
           "code_size": code_size(result["config"]),
           "epochs": result["epochs"], "grad_clip_norm": result["config"].get("grad_clip_norm"),
           "best_epoch": [m["best_epoch"] for m in members],
           "status": "completed" if all(m["status"] == "completed" for m in members) else
           f"{sum(m['status'] != 'completed' for m in members)} of {len(members)} diverged",
           "rollbacks": [len(m["rollbacks"]) for m in members],
           "hparams": {k: v for k, v in members[0].items() if k not in ("seed", "status", "diverged_at_epoch",
                                                                         "best_epoch", "rollbacks", "lr_scale",
                                                                         "valid", "test")}}
    row["changes"] = (presets.differences(result["preset"], result["config"], row["hparams"])
                      if result.get("preset") in presets.PRESETS else {})
    for key in ("mae", "rmse", "sse_per_seq"):
        row[key], row[f"{key}_std"] = stat(key)
    row["valid_sse_per_seq"], row["valid_sse_per_seq_std"] = stat("sse_per_seq", "valid")
    return row


def fitted_errors(run: Path, member: int | None, steps: int) -> dict:
    """Test errors of the run in `run` (or of member `member` of the sweep there) with every test stride's code
    fitted to it by `steps` Adam steps (jaxphysvae.refine)."""
    from jaxphysvae.sweep import load_any
    _, _, model, _, params, splits, _ = load_any(run if member is None else f"{run}:{member}")
    x = splits["test"].x
    return reconstruction_errors(refine(model, params, x, steps=steps)["x_PAB"], x)


def collect(run_dirs, refine_steps: int = 0) -> list[dict]:
    """The table's rows of run or sweep directories; with `refine_steps`, also "fitted_mae", "fitted_rmse" and
    "fitted_sse_per_seq" (mean +- std over seeds) with each member's code fitted to each test stride."""
    rows = []
    for run in map(Path, run_dirs):
        if (run / "sweep.json").is_file():
            rows.append(_sweep_row(run))
            if refine_steps:
                fitted = [fitted_errors(run, m, refine_steps) for m in range(rows[-1]["seeds"])]
                for key in fitted[0]:
                    values = [f[key] for f in fitted]
                    rows[-1].update({f"fitted_{key}": float(np.mean(values)),
                                     f"fitted_{key}_std": float(np.std(values))})
            continue
        if not (run / "summary.json").is_file():
            print(f"skipping {run}: no summary.json or sweep.json", file=sys.stderr)
            continue
        summary = json.loads((run / "summary.json").read_text())
        record = json.loads((run / "config.json").read_text())
        rows.append({"model": record.get("preset") or run.name, "run": str(run), "seeds": 1,
                     "code_size": code_size(record["config"]),
                     "epochs": summary["epochs_run"], "grad_clip_norm": record["config"].get("grad_clip_norm"),
                     "best_epoch": [summary["best_epoch"]], "status": summary["status"],
                     "rollbacks": [len(summary.get("rollbacks", []))], **summary["test"],
                     "train_seconds_per_epoch": summary.get("train_seconds_per_epoch"),
                     "valid_sse_per_seq": summary["valid"]["sse_per_seq"]})
        if refine_steps:
            rows[-1].update({f"fitted_{k}": v for k, v in fitted_errors(run, None, refine_steps).items()})
    return rows


def markdown(ours: list[dict], base: list[dict]) -> str:
    lines = ["| model | code size | seeds | epochs (best per seed) | rollbacks | run ended | norm clip | valid squared "
             "error per stride | test MAE | RMSE | squared error per stride | fitted code: test MAE / RMSE / squared "
             "error |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def fitted(r):
        if "fitted_mae" not in r:
            return "-"
        spread = lambda k: f" +- {r[f'fitted_{k}_std']:.4f}" if r["seeds"] > 1 else ""
        return " / ".join(f"{r['fitted_' + k]:.4f}{spread(k)}" for k in ("mae", "rmse", "sse_per_seq"))

    for r in ours:
        ended = "completed" if r["status"] == "completed" else (
            r["status"] if r["seeds"] > 1 else f"{r['status']} after epoch {r['epochs']}")
        clip = r["grad_clip_norm"] if r.get("grad_clip_norm") else "none"
        value = lambda k, digits=4: (f"{r[k]:.{digits}f}" + (f" +- {r[k + '_std']:.{digits}f}"
                                                            if f"{k}_std" in r else ""))
        changed = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in r.get("changes", {}).items())
        best = ", ".join(map(str, r["best_epoch"]))
        lines.append(f"| **{r['model']}**{', ' + changed if changed else ''} | {r['code_size']} | {r['seeds']} | "
                     f"{r['epochs']} ({best}) | "
                     f"{sum(r['rollbacks'])} | {ended} | {clip} | {value('valid_sse_per_seq')} | {value('mae')} | "
                     f"{value('rmse')} | {value('sse_per_seq')} | {fitted(r)} |")
    for name, mae, rmse, sse, sec in PUBLISHED:
        lines.append(f"| {name} | - | 1 | - | - | - | - | - | {mae:.4f} | {rmse:.4f} | {sse:.4f} | - |")
    for r in base:
        lines.append(f"| {r['model']} | {r['code_size']} | - | - | - | - | - | - | {r['mae']:.4f} | {r['rmse']:.4f} | "
                     f"{r['sse_per_seq']:.4f} | - |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*",
                        help="run or sweep directories to collect (default: SWEEPS/PRESET for each preset)")
    parser.add_argument("--train", action="store_true",
                        help="first sweep each of --presets over --seeds (resumes existing sweeps)")
    parser.add_argument("--presets", default=",".join(PRESETS),
                        help="comma-separated presets to train and collect from SWEEPS/PRESET when no run "
                             "directories are given (default: the published and the tuned)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per preset (default: the preset's)")
    parser.add_argument("--refine-steps", type=int, default=None, metavar="N",
                        help="also score each model with every test stride's code fitted by N Adam steps (0: skip; "
                             f"default 200, {QUICK_REFINE_STEPS} with --quick)")
    parser.add_argument("--sweeps", default="runs/locomotion", help="directory of the --train sweeps")
    parser.add_argument("--out", default=str(RESULTS), help="directory of the table (default experiments/results)")
    parser.add_argument("--quick", action="store_true",
                        help=f"toy widths, {QUICK_EPOCHS} epochs (the test's; keep its --sweeps apart)")
    parser.add_argument("--name", default="locomotion", type=report.file_name,
                        help="the results' file name: OUT/NAME.{json,md} (one table per set of runs)")
    args = parser.parse_args(argv)
    chosen = args.presets.split(",")
    unknown = [p for p in chosen if p not in presets.PRESETS]
    if unknown:
        parser.error(f"unknown preset(s) {', '.join(unknown)}; `jaxphysvae presets` lists them")
    refine_steps = args.refine_steps if args.refine_steps is not None else QUICK_REFINE_STEPS if args.quick else 200
    if refine_steps < 0:
        parser.error(f"--refine-steps {refine_steps}: expected a number of steps >= 0")
    if args.quick and not args.train:
        parser.error("--quick makes --train's models small; give --train")
    if args.train and args.runs:
        parser.error("--train trains into SWEEPS/PRESET for each of --presets; give no run directories")
    run_dirs = args.runs or [str(Path(args.sweeps) / p) for p in chosen]
    if args.train:
        seeds = [int(s) for s in args.seeds.split(",")]
        epochs = quick_epochs(args.quick, args.epochs)
        for preset, run in zip(chosen, run_dirs):
            preset_sweep(preset, {"seed": seeds}, Path(run), epochs, presets.TOY_WIDTHS if args.quick else None,
                         progress=not args.quick)
    ours, base = collect(run_dirs, refine_steps), baselines()
    table = markdown(ours, base)
    result = {"ours": ours, "baselines": base, "published": PUBLISHED}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / f"{args.name}.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    with atomic_path(out / f"{args.name}.md") as tmp:
        tmp.write_text(table + "\n")
    print(table)
    return result


if __name__ == "__main__":
    from experiments.command import run_command
    run_command(main)
