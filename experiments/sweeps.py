"""The experiments' one way to train a preset over a grid: a vectorised sweep that continues what its directory
holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from jaxphysvae import presets
from jaxphysvae.config import HParams, apply_overrides


QUICK_EPOCHS = 2  # an experiment's --quick budget


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
