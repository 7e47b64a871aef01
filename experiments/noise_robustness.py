"""Robustness to noise: test error of trained models when their encoder sees corrupted strides, over seeds.

    python -m experiments.noise_robustness SWEEP_DIR... [RUN_DIR...] [--results]

Every noise model of jaxphysvae.noise (Gaussian, impulse, missing segment, the NF paper's feature noise, feature
dropout) at LEVELS (0 to 25 %, the attentive NF-VAE paper's range); targets are the clean strides; posterior mean;
noise drawn per sequence from a fixed key. A sweep directory is one model whose members (its seeds) give the mean
+- std; a run directory is one seed. Each model is evaluated as it was trained: the NF presets trained with 10 % x
10 % feature noise, the phys-VAE columns without noise. The table states, per model, whether its error falls as
feature noise grows (the paper's claim). Writes OUT.{json,md,png} (default experiments/results/noise_robustness).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from experiments.locomotion import sweep_label
from jaxphysvae import files
from jaxphysvae.noise import FEATURE_NOISE, INPUT_NOISE
from jaxphysvae.sweep import load_any
from jaxphysvae.train import evaluate

RESULTS = Path(__file__).resolve().parent / "results"
LEVELS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)
KINDS = (*INPUT_NOISE, *FEATURE_NOISE)


def seed_curves(path: str, levels=LEVELS, kinds=KINDS, split: str = "test") -> dict:
    """{kind: [test MAE at each level]} of one trained model (a run directory or SWEEP_DIR:M)."""
    config, hparams, _, fns, params, splits, _ = load_any(path)
    out = {}
    for kind in kinds:
        out[kind] = []
        for level in levels:
            metrics, _ = evaluate(fns, params, splits[split], hparams, config.schedule.eval_batch_size,
                                  key=jax.random.key(0), noise_kind=kind if level else "none", noise_level=level)
            out[kind].append(float(metrics["mae"]))
    return out


def members(directory: str) -> tuple[str, list[str]]:
    """(model name, the paths of its seeds): every member of a sweep directory (named by its preset and what differs
    from it), or the run directory itself."""
    d = Path(directory)
    if (d / "sweep.json").is_file():
        result = json.loads((d / "sweep.json").read_text())
        return sweep_label(result, d.name), [f"{d}:{m}" for m in range(len(result["members"]))]
    record = json.loads((d / "config.json").read_text())
    return record.get("preset") or d.name, [str(d)]


def model_curves(directory: str, levels=LEVELS, kinds=KINDS) -> dict:
    """Per kind and level, the mean and std over the model's seeds of the test MAE, and each seed's values."""
    name, paths = members(directory)
    per_seed = [seed_curves(p, levels, kinds) for p in paths]
    curves = {kind: [{"level": level, "mae": float(np.mean([s[kind][i] for s in per_seed])),
                      "mae_std": float(np.std([s[kind][i] for s in per_seed])),
                      "per_seed": [s[kind][i] for s in per_seed]} for i, level in enumerate(levels)]
              for kind in kinds}
    return {"model": name, "run": str(directory), "seeds": len(paths), "curves": curves,
            "feature_noise_trend": feature_trend(curves.get("feature"))}


def feature_trend(points: list[dict] | None) -> str | None:
    """Whether the mean error falls, rises or neither as feature noise grows from 0 to the largest level: 'falls'
    if the largest level's mean is below the clean one by more than the clean one's std over seeds, 'rises' if
    above by more than that, else 'flat'."""
    if not points:
        return None
    clean, last = points[0], points[-1]
    margin = clean["mae_std"]
    return "falls" if last["mae"] < clean["mae"] - margin else "rises" if last["mae"] > clean["mae"] + margin \
        else "flat"


def figure(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KINDS), figsize=(3.3 * len(KINDS), 3.0), sharey=True)
    for ax, kind in zip(axes, KINDS):
        for r in results:
            pts = r["curves"][kind]
            ax.errorbar([100 * p["level"] for p in pts], [p["mae"] for p in pts], yerr=[p["mae_std"] for p in pts],
                        fmt="o-", ms=3, capsize=2, label=f"{r['model']} ({r['seeds']} seeds)")
        ax.set_title(kind)
        ax.set_xlabel("noise level (%)")
        ax.set_yscale("log")
    axes[0].set_ylabel("test MAE (rad)")
    axes[-1].legend(fontsize=6)
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def markdown(results: list[dict]) -> str:
    levels = [p["level"] for p in results[0]["curves"][KINDS[0]]]
    lines = ["Test MAE (radians) under each noise model and level, the encoder seeing corrupted strides (targets "
             "clean; posterior mean); mean +- std over seeds.", "",
             "| model | seeds | noise | " + " | ".join(f"{100 * lv:g} %" for lv in levels) + " |",
             "|" + "---|" * (3 + len(levels))]
    for r in results:
        for kind in KINDS:
            cells = " | ".join(f"{p['mae']:.4f} +- {p['mae_std']:.4f}" for p in r["curves"][kind])
            lines.append(f"| {r['model']} | {r['seeds']} | {kind} | {cells} |")
    lines += ["", "As feature noise grows from 0 to 25 %, the error: " + "; ".join(
        f"{r['model']} {r['feature_noise_trend']}" for r in results) + " (a change larger than the clean error's "
        "std over seeds)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="sweep directories (their members are the seeds) or run directories")
    parser.add_argument("--out", default=str(RESULTS / "noise_robustness"),
                        help="the results' path without its suffix (default experiments/results/noise_robustness)")
    args = parser.parse_args(argv)
    for d in args.runs:
        if not ((Path(d) / "sweep.json").is_file() or (Path(d) / "config.json").is_file()):
            parser.error(f"{d}: neither a finished sweep (sweep.json) nor a run directory (config.json)")
    results = [model_curves(d) for d in args.runs]
    out = Path(args.out)
    files.write_json(out.with_suffix(".json"), results)
    text = markdown(results)
    with files.atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(text)
    figure(results, out.with_suffix(".png"))
    print(text)
    return results


if __name__ == "__main__":
    main()
