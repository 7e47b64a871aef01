"""Locomotion reconstruction table: our presets against the reference baselines of METHOD.md section 7.

    python -m experiments.locomotion --train                 # train the presets (long: see --epochs), then collect
    python -m experiments.locomotion runs/locomotion-*       # collect existing run directories into the table

Baselines (all zeros, mean training stride, PCA with k components fitted on train) are recomputed here from the
data; the published PyTorch figures are quoted from METHOD.md. Protocol: test split (344 strides), best-validation
checkpoint, posterior mean of every latent, errors in radians; a "batch" attention context is evaluated in batches
of 344 (the whole test split) in file order. Writes experiments/results/locomotion.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from jaxphysvae import data
from jaxphysvae.files import atomic_path

RESULTS = Path(__file__).resolve().parent / "results"
PRESETS = ("locomotion-phys-vae-takeishi", "locomotion-phys-vae", "locomotion-nf", "locomotion-attnf",
           "locomotion-attnf-seq")
PUBLISHED = [  # METHOD.md section 7: the published PyTorch code on this split
    ("published phys-VAE NN-only (3000 epochs, best 782)", 0.0143, 0.0190, 0.110, 0.10),
    ("published phys-VAE NN + Hamiltonian + R_ppc (3000, best 1535)", 0.0128, 0.0171, 0.0885, 0.94),
    ("published attentive NF-VAE (noise on, one stochastic pass; best 368)", 0.0133, 0.0177, 0.0947, 2.0),
]


def errors(x_hat: np.ndarray, x: np.ndarray) -> dict:
    err = x_hat - x
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean())),
            "sse_per_seq": float((err**2).sum(axis=(1, 2)).mean())}


def baselines() -> list[dict]:
    train, test = data.load("locomotion", "train").x, data.load("locomotion", "test").x
    rows = [{"model": "all zeros", **errors(np.zeros_like(test), test)},
            {"model": "mean training stride", **errors(np.broadcast_to(train.mean(0), test.shape), test)}]
    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    mean = flat_train.mean(0)
    _, _, vt = np.linalg.svd(flat_train - mean, full_matrices=False)
    for k in (5, 15, 21, 30):
        basis = vt[:k]
        recon = (flat_test - mean) @ basis.T @ basis + mean
        rows.append({"model": f"PCA, {k} components (fitted on train)", **errors(recon.reshape(test.shape), test)})
    return rows


def collect(run_dirs) -> list[dict]:
    rows = []
    for run in map(Path, run_dirs):
        if not (run / "summary.json").is_file():
            print(f"skipping {run}: no summary.json", file=sys.stderr)
            continue
        summary = json.loads((run / "summary.json").read_text())
        record = json.loads((run / "config.json").read_text())
        rows.append({"model": record.get("preset") or run.name, "run": str(run), "epochs": summary["epochs_run"],
                     "grad_clip_norm": record["config"].get("grad_clip_norm"),
                     "best_epoch": summary["best_epoch"], "status": summary["status"], **summary["test"],
                     "train_seconds_per_epoch": summary.get("train_seconds_per_epoch"),
                     "valid_sse_per_seq": summary["valid"]["sse_per_seq"]})
    return rows


def markdown(ours: list[dict], base: list[dict]) -> str:
    lines = ["| model | epochs run (best) | run ended | norm clip | test MAE | RMSE | squared error per stride |",
             "|---|---|---|---|---|---|---|"]
    for r in ours:
        ended = "completed" if r["status"] == "completed" else f"{r['status']} after epoch {r['epochs']}"
        clip = r["grad_clip_norm"] if r.get("grad_clip_norm") else "none"
        lines.append(f"| **{r['model']}** | {r['epochs']} ({r['best_epoch']}) | {ended} | {clip} | {r['mae']:.4f} | "
                     f"{r['rmse']:.4f} | {r['sse_per_seq']:.4f} |")
    for name, mae, rmse, sse, sec in PUBLISHED:
        lines.append(f"| {name} | - | - | - | {mae:.4f} | {rmse:.4f} | {sse:.4f} |")
    for r in base:
        lines.append(f"| {r['model']} | - | - | - | {r['mae']:.4f} | {r['rmse']:.4f} | {r['sse_per_seq']:.4f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run directories to collect (default: runs/PRESET for each preset)")
    parser.add_argument("--train", action="store_true", help="train the presets first (resumes existing runs)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per preset (default: the preset's)")
    args = parser.parse_args(argv)
    run_dirs = args.runs or [f"runs/{p}" for p in PRESETS]
    if args.train:
        for preset, run in zip(PRESETS, run_dirs):
            command = [sys.executable, "-m", "jaxphysvae.cli", "train", "--preset", preset, "--out", run]
            if args.epochs:
                command += ["--epochs", str(args.epochs)]
            if (Path(run) / "last.ckpt").exists():
                command.append("--resume")
            subprocess.run(command, check=True)
    ours, base = collect(run_dirs), baselines()
    table = markdown(ours, base)
    with atomic_path(RESULTS / "locomotion.json") as tmp:
        tmp.write_text(json.dumps({"ours": ours, "baselines": base, "published": PUBLISHED}, indent=2) + "\n")
    with atomic_path(RESULTS / "locomotion.md") as tmp:
        tmp.write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
