"""Human locomotion strides (Lencioni et al. 2019) in the phys-VAE split, and the reading of such splits.

A split directory holds `data_{train,valid,test}.mat` (MATLAB v5, variable `data`, float (N, 3, 101), radians:
hip, knee and ankle flexion over one stride) and `prop_{split}.txt` (a space-separated table with a header row,
one row per stride). `jaxphysvae/data/published/README.md` describes the columns.

The data are read, in this order, from the `directory` argument, from $JAXPHYSVAE_LOCOMOTION_DIR, or from the
published split that ships inside the package (`jaxphysvae/data/published/`, CC BY 4.0, Lencioni et al., Sci. Data
6:309, 2019; see the README there), so every locomotion preset runs on a bare installation.
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
PACKAGED = Path(__file__).resolve().parent / "published" / "lencioni2019_physvae_split.npz"
PACKAGED_SOURCE = ("published phys-VAE split packaged with jaxphysvae (Lencioni et al., Sci. Data 6:309, 2019; "
                   "CC BY 4.0)")
# SHA-256 of each packaged array's little-endian float64 bytes: the arrays of the published data_*.mat and prop_*.txt
PACKAGED_SHA256 = {
    "x_train": "e819becaf2af93a6af929fde1a2fb4686ebfe31bdef0b345ba96662dbc56f584",
    "x_valid": "c6b36d53bb7ed2d6001fe02ae2f416e095b069850ff4cc14c19ddec1b5dd6942",
    "x_test": "95609efa8734bdae2d41175b55c4d76ef2c9d6a40f36de94bba394862e790806",
    "prop_train": "bf8aea58661c92b45d281d932676457324c81cb8558d4585e344014ad423b135",
    "prop_valid": "a30c48cdc1dac124216579deee1432630111d625ecc18fb5c1536c77ce715855",
    "prop_test": "e8924a40aa38631c8b8cda4baf07e611fd3cfaf774f33858aea3fc2db892b8f5",
}


def locate(directory: str | os.PathLike | None = None) -> Path | None:
    """The split directory: `directory`, else $JAXPHYSVAE_LOCOMOTION_DIR, else None (the packaged split)."""
    if directory is None:
        directory = os.environ.get(LOCOMOTION_DIR_ENV) or None
        if directory is None:
            return None
        how = f"(from ${LOCOMOTION_DIR_ENV}; unset it to use the packaged split)"
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


def load_packaged(split: str, verify: bool = True) -> Dataset:
    """The `split` of the published phys-VAE split that ships with the package, as a `Dataset` (N, 3, 101)."""
    check_split(split)
    try:
        with np.load(PACKAGED, allow_pickle=False) as f:
            x, prop, columns = f[f"x_{split}"], f[f"prop_{split}"], [str(c) for c in f["prop_columns"]]
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise DataError(f"{PACKAGED}: the packaged locomotion split cannot be read ({type(e).__name__}: {e}); "
                        f"reinstall jaxphysvae or set ${LOCOMOTION_DIR_ENV}") from None
    if verify:
        for name, array in ((f"x_{split}", x), (f"prop_{split}", prop)):
            digest = hashlib.sha256(np.ascontiguousarray(array, "<f8").tobytes()).hexdigest()
            if digest != PACKAGED_SHA256[name]:
                raise DataError(f"{PACKAGED}: array {name} does not match its SHA-256 (file corrupt or modified); "
                                f"reinstall jaxphysvae")
    x = check_sequences(x, f"{PACKAGED}:x_{split}", channels=len(CHANNELS), length=NUM_STEPS)
    covariates = {name: prop[:, j] for j, name in enumerate(columns)}
    return Dataset(name=NAME, split=split, x=x, dt=DT, channels=CHANNELS, covariates=covariates,
                   source=PACKAGED_SOURCE + (" (SHA-256 verified)" if verify else ""))


def load(split: str, directory: str | os.PathLike | None = None, verify: bool = True) -> Dataset:
    """The `split` ("train", "valid" or "test") of a locomotion split, as a `Dataset` (N, 3, 101).

    Args:
      split: which split.
      directory: a split directory in the published layout; default $JAXPHYSVAE_LOCOMOTION_DIR, else the split
        packaged with the library.
      verify: check the files against MD5SUMS when the directory has one (the packaged arrays against their
        SHA-256).
    """
    directory = locate(directory)
    if directory is None:
        return load_packaged(split, verify)
    path = directory / f"data_{check_split(split)}.mat"
    checked = verify and path.is_file() and verify_md5(path)
    x = check_sequences(read_mat_variable(path, "data"), str(path), channels=len(CHANNELS), length=NUM_STEPS)
    prop = directory / f"prop_{split}.txt"
    covariates = read_table(prop, x.shape[0]) if prop.exists() else {}
    return Dataset(name=NAME, split=split, x=x, dt=DT, channels=CHANNELS, covariates=covariates,
                   source=f"{path}" + (" (MD5 verified)" if checked else ""))
