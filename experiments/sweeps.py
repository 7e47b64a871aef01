"""The experiments' one way to train a preset over a grid: a vectorised sweep that continues what its directory
holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from jaxphysvae import presets
from jaxphysvae.config import HParams, apply_overrides
from jaxphysvae.rundir import read_metrics


QUICK_EPOCHS = 2  # an experiment's --quick budget
TAIL = 0.2  # the last fifth of the epochs, over which a learning curve's flattening is measured


def quick_epochs(quick: bool, epochs: int | None, default: int | None = None) -> int | None:
    """The epochs an experiment trains: `epochs` if given, else QUICK_EPOCHS with --quick, else `default` (None: the
    preset's)."""
    if epochs is not None:
        return epochs
    return QUICK_EPOCHS if quick else default


def changed_label(preset: str, sets: Sequence[str]) -> str:
    """A table row's name for `preset` changed by the `key=value` strings `sets`: "PRESET (k=v, ...)"."""
    return f"{preset} ({', '.join(sets)})" if sets else preset


def changed_suffix(sets: Sequence[str]) -> str:
    """"" or "_k=v+..." (characters other than letters, digits and ._=+- replaced by _): what a table's file name
    gains for changed presets, so that a changed run never overwrites the table of the presets as they are."""
    return "_" + re.sub(r"[^A-Za-z0-9._=+-]", "_", "+".join(sets)) if sets else ""


def preset_sweep(preset: str, grid: dict, target: Path, epochs: int | None = None, changes: dict | None = None,
                 splits: dict | None = None, progress: bool = True, sets: Sequence[str] = ()) -> dict:
    """Sweep `preset` (its configuration with `changes`, then the `key=value` strings `sets` as the CLI's --set
    takes them, and `epochs` if given) over `grid` into `target`, resuming the sweep stored there if any (its epochs
    may grow); the sweep's result (sweep.json's contents). `splits`: data sets to train on instead of the
    configuration's."""
    from jaxphysvae.sweep import CONFIG_FILE, sweep
    config, base = preset_configuration(preset, changes, sets, epochs)
    return sweep(config, base, grid, target, progress=progress, splits=splits,
                 resume=(Path(target) / CONFIG_FILE).is_file(), preset=preset)


def preset_configuration(preset: str, changes: dict | None = None, sets: Sequence[str] = (),
                         epochs: int | None = None):
    """(Config, base hyper-parameters as floats) that `preset_sweep` trains with the same arguments."""
    config, hparams = presets.get(preset)
    config, hparams = apply_overrides(config.replace(**(changes or {})), hparams, list(sets))
    if epochs:
        config = config.replace(epochs=epochs)
    return config, {k: float(v) for k, v in HParams.create(**hparams)._asdict().items()}


def learning_curve(sweep_dir: Path, members: Sequence[int] | None = None) -> dict | None:
    """Epochs and the validation error (valid_sse_per_seq, what the best checkpoint is chosen on) averaged per epoch
    over `members` (indices into the sweep's members; default all) where they have one, from a sweep's metrics.jsonl
    (None for a sweep from before the log existed); and "tail_drop", how much the best of that mean fell over the
    last TAIL of the epochs, relative to its value there (computed before rounding the stored curve): near 0 for a
    curve that has flattened."""
    rows, _ = read_metrics(Path(sweep_dir) / "metrics.jsonl")
    rows = [r for r in rows if r.get("valid_sse_per_seq")]
    if not rows:
        return None
    pick = (lambda values: values) if members is None else (lambda values: [values[i] for i in members])
    epochs = np.array([r["epoch"] for r in rows])
    mean = np.array([np.mean([v for v in pick(r["valid_sse_per_seq"]) if v is not None] or [np.nan]) for r in rows])
    best = np.fmin.accumulate(mean)
    before = best[epochs <= epochs[-1] * (1 - TAIL)]
    tail_drop = float((before[-1] - best[-1]) / before[-1]) if before.size else None
    # 4 significant digits: the figure's resolution, and a results file a quarter the size
    return {"epoch": epochs.tolist(), "valid_sse_per_seq": [float(f"{v:.4g}") for v in mean], "tail_drop": tail_drop}
