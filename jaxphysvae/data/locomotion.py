"""Human locomotion strides (Lencioni et al. 2019) in the phys-VAE split, and the reading of such splits.

A split directory holds `data_{train,valid,test}.mat` (MATLAB v5, variable `data`, float (N, 3, 101), radians:
hip, knee and ankle flexion over one stride) and `prop_{split}.txt` (a space-separated table with a header row,
one row per stride). See ../shared/data/locomotion_lencioni2019_physvae_split/NOTE.md.

The directory is found in this order: the `directory` argument, $JAXPHYSVAE_LOCOMOTION_DIR, and
`../shared/data/locomotion_lencioni2019_physvae_split` beside the repository's root.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import scipy.io

from jaxphysvae.data.dataset import Dataset, check_sequences, check_split
from jaxphysvae.errors import DataError

NAME = "locomotion"
CHANNELS = ("hip", "knee", "ankle")
NUM_STEPS = 101
DT = 0.02  # the references' integration step for one 1 %-of-stride sample
LOCOMOTION_DIR_ENV = "JAXPHYSVAE_LOCOMOTION_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DEFAULT_DIR = SHARED_DATA / "locomotion_lencioni2019_physvae_split"


def locate(directory: str | os.PathLike | None = None) -> Path:
    """The split directory: `directory`, else $JAXPHYSVAE_LOCOMOTION_DIR, else the shared default."""
    if directory is None:
        directory = os.environ.get(LOCOMOTION_DIR_ENV) or DEFAULT_DIR
        how = f"(set ${LOCOMOTION_DIR_ENV} or pass a directory; default {DEFAULT_DIR})"
    else:
        how = "(given as argument)"
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"locomotion data directory {directory} does not exist {how}. Build one from the raw "
                        f"files with `jaxphysvae data build-locomotion`, see the README.")
    return directory


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_md5(path: Path) -> bool:
    """Check `path` against the MD5SUMS file beside it. True if checked, False if no entry; raise on mismatch."""
    sums = path.parent / "MD5SUMS"
    if not sums.is_file():
        return False
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            if md5sum(path) != parts[0].lower():
                raise DataError(f"{path}: MD5 checksum does not match {sums} (file corrupt or modified)")
            return True
    return False


def read_mat_variable(path: Path, variable: str) -> np.ndarray:
    """One variable of a MATLAB file, with clear errors for a missing, unreadable or incomplete file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        contents = scipy.io.loadmat(path, variable_names=[variable])
    except Exception as e:  # scipy raises many types for corrupt or truncated files
        raise DataError(f"{path}: cannot read as a MATLAB .mat file ({type(e).__name__}: {e})") from None
    if variable not in contents:
        raise DataError(f"{path}: has no variable {variable!r}")
    return contents[variable]


def read_table(path: Path, rows: int) -> dict[str, np.ndarray]:
    """A space-separated table with a header row; each column as float64 of shape (rows,)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
        header, body = lines[0], np.array(lines[1:], dtype=np.float64)
    except (ValueError, IndexError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read as a table with a header row ({e})") from None
    if body.shape != (rows, len(header)):
        raise DataError(f"{path}: expected {rows} rows of {len(header)} columns, got shape {body.shape}")
    return {name: body[:, j] for j, name in enumerate(header)}


def load(split: str, directory: str | os.PathLike | None = None, verify: bool = True) -> Dataset:
    """The `split` ("train", "valid" or "test") of a locomotion split directory, as a `Dataset` (N, 3, 101).

    Args:
      split: which split.
      directory: the split directory (see the module docstring for the default).
      verify: check the file against MD5SUMS when the directory has one.
    """
    directory = locate(directory)
    path = directory / f"data_{check_split(split)}.mat"
    checked = verify and path.is_file() and verify_md5(path)
    x = check_sequences(read_mat_variable(path, "data"), str(path), channels=len(CHANNELS), length=NUM_STEPS)
    prop = directory / f"prop_{split}.txt"
    covariates = read_table(prop, x.shape[0]) if prop.exists() else {}
    return Dataset(name=NAME, split=split, x=x, dt=DT, channels=CHANNELS, covariates=covariates,
                   source=f"{path}" + (" (MD5 verified)" if checked else ""))
