"""Robustness to noise: test error of trained models when their encoder sees corrupted strides.

    python -m experiments.noise_robustness runs/locomotion-phys-vae runs/locomotion-nf ...

Every noise model of jaxphysvae.noise (Gaussian, impulse, missing segment, the NF paper's feature noise, feature
dropout) at levels 0 to 0.5; targets are the clean strides; posterior mean; noise drawn per sequence with a fixed
seed. Writes experiments/results/noise_robustness.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax

from jaxphysvae.files import atomic_path
from jaxphysvae.fit import load_run
from jaxphysvae.noise import FEATURE_NOISE, INPUT_NOISE
from jaxphysvae.train import evaluate

RESULTS = Path(__file__).resolve().parent / "results"
LEVELS = (0.0, 0.05, 0.1, 0.25, 0.5)
KINDS = (*INPUT_NOISE, *FEATURE_NOISE)


def curves(run: str, levels=LEVELS, kinds=KINDS, split: str = "test") -> dict:
    config, hparams, _, fns, params, splits, record = load_run(run)
    out = {}
    for kind in kinds:
        out[kind] = []
        for level in levels:
            metrics, _ = evaluate(fns, params, splits[split], hparams, config.schedule.eval_batch_size,
                                  key=jax.random.key(0), noise_kind=kind if level else "none", noise_level=level)
            out[kind].append({"level": level, **metrics})
    return {"model": record.get("preset") or Path(run).name, "run": run, "curves": out}


def figure(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KINDS), figsize=(3.3 * len(KINDS), 3.0), sharey=True)
    for ax, kind in zip(axes, KINDS):
        for r in results:
            pts = r["curves"][kind]
            ax.plot([100 * p["level"] for p in pts], [p["mae"] for p in pts], "o-", ms=3, label=r["model"])
        ax.set_title(kind)
        ax.set_xlabel("noise level (%)")
        ax.set_yscale("log")
    axes[0].set_ylabel("test MAE (rad)")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(results: list[dict]) -> str:
    head = "| model | noise | " + " | ".join(f"{100 * lv:g} %" for lv in LEVELS) + " |"
    lines = [head, "|" + "---|" * (2 + len(LEVELS))]
    for r in results:
        for kind in KINDS:
            maes = " | ".join(f"{p['mae']:.4f}" for p in r["curves"][kind])
            lines.append(f"| {r['model']} | {kind} | {maes} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args(argv)
    results = [curves(run) for run in args.runs]
    with atomic_path(RESULTS / "noise_robustness.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    with atomic_path(RESULTS / "noise_robustness.md") as tmp:
        tmp.write_text("Test MAE (radians) under each noise model and level (posterior mean, clean targets).\n\n"
                       + table + "\n")
    figure(results, RESULTS / "noise_robustness.png")
    print(table)


if __name__ == "__main__":
    main()
