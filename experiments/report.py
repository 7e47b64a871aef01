"""Writing an experiment's results: a JSON record, a Markdown table and a figure, each replaced atomically."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from jaxphysvae import files


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


def save_figure(fig, path: Path, dpi: int = 110) -> None:
    """Save a matplotlib figure as PNG at `path` atomically, and close it."""
    import matplotlib.pyplot as plt
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
