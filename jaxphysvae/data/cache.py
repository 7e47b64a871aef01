"""Where generated data are cached, and atomic file writing (no partially written file is ever left behind)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

DATA_DIR_ENV = "JAXPHYSVAE_DATA_DIR"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The directory of generated-data caches: `path`, else $JAXPHYSVAE_DATA_DIR, else ~/.cache/jaxphysvae."""
    if path is None:
        path = os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "jaxphysvae"
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on any error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
