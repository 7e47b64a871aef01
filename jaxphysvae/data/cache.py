"""Where generated data are cached, and their .npz files (written atomically)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from jaxphysvae.files import atomic_path

DATA_DIR_ENV = "JAXPHYSVAE_DATA_DIR"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The directory of generated-data caches: `path`, else $JAXPHYSVAE_DATA_DIR, else ~/.cache/jaxphysvae."""
    if path is None:
        path = os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "jaxphysvae"
    return Path(path)


def save_npz(path: str | os.PathLike, **arrays) -> None:
    """Write arrays to an .npz file atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """Read an .npz cache; None when it is missing or unreadable (a corrupt cache is regenerated, not trusted)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
        return None
