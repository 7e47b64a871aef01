"""Writing an experiment's results: a JSON record, a Markdown table and a figure, each replaced atomically."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from jaxphysvae import files
from jaxphysvae.errors import ConfigError


def file_name(text: str) -> str:
    """An argparse `type` for a results' file name (NAME of NAME.json ...): refused with a one-line error when it is
    empty or has a directory part, which would write the tables outside the directory they belong in."""
    if not text or Path(text).name != text or text in (".", ".."):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a file name without a directory")
    return text


def write(name: str, result, text: str, targets, figure: Callable[[Path], None] | None = None) -> None:
    """NAME.json (`result`), NAME.md (`text`) and, with `figure` (which draws to the path it is given), NAME.png in
    each directory of `targets`."""
    for target in map(Path, targets):
        files.write_json(target / f"{name}.json", result)
        with files.atomic_path(target / f"{name}.md") as tmp:
            tmp.write_text(text)
        if figure is not None:
            figure(target / f"{name}.png")


def check_same_models(name: str, targets, models: list[str], is_model: Callable[[dict], bool] = lambda row: True
                      ) -> None:
    """Refuse (ConfigError), before any training, a call whose table NAME.json would replace one in a directory of
    `targets` that holds the rows of other models: a table holds the models of the call that wrote it, so another
    call's (other variants, other presets, the baselines alone) would drop those rows. `models`: this call's row
    labels; `is_model(row)`: whether a stored row is a model's (not a baseline's). The same models again (more
    seeds, more epochs) replace their table."""
    def listing(labels):
        return ", ".join(labels) if labels else "no model (the baselines alone)"
    for target in map(Path, targets):
        path = target / f"{name}.json"
        if not path.is_file():
            continue
        stored = files.read_json(path, "an experiment's table")
        try:
            held = [row["model"] for row in stored["rows"] if is_model(row)]
        except (KeyError, TypeError):
            raise ConfigError(f"{path}: not an experiment's table (no rows of models); give --name NAME to write "
                              f"this call's beside it") from None
        if sorted(held) != sorted(models):
            raise ConfigError(f"{path} holds the table of {listing(held)}; this call's is of {listing(models)}: "
                              f"give --name NAME to keep both, or remove {path.name} to replace it")


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Save a matplotlib figure as PNG at `path` atomically, and close it."""
    import matplotlib.pyplot as plt
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
