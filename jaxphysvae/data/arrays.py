"""A user's own sequences: arrays of shape (N, C, T) from memory or from .npz / .npy files, split into train,
valid and test, with their time step and, optionally, the true per-sequence parameters.

    splits = jaxphysvae.data.arrays.from_arrays(x, dt=0.1, params={"k": k})     # dict split -> Dataset
    splits = jaxphysvae.data.arrays.load_file("oscillator.npz")

File layout (.npz keys; `np.savez("f.npz", x=x, dt=0.1, param_k=k)`):
  x                           (N, C, T) every sequence, split by `sizes` with a permutation seeded by `seed`; or
  x_train, x_valid, x_test    (N_s, C, T) the splits themselves (all three);
  dt                          the time step, a positive scalar (required unless given as the `dt` argument, which
                              then must agree with it);
  channels                    (C,) channel names (optional; default ch0, ch1, ...);
  param_NAME                  (N,) true values of parameter NAME, with `x`; param_NAME_train, param_NAME_valid,
                              param_NAME_test with the splits. A physics model whose param_names include NAME is
                              scored against them.
A .npy file holds x alone; `dt` must then be given. A directory is read as a locomotion split (data_*.mat files,
jaxphysvae.data.locomotion).

Every array is validated as the built-in sets are (shape, dtype, NaN / Inf, sizes); a problem is a DataError that
names the file and the key.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from jaxphysvae.data.dataset import SPLITS, Dataset, check_sequences
from jaxphysvae.errors import DataError

SUFFIXES = (".npz", ".npy")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)  # train, valid, test when no size is given


def is_path(name: str) -> bool:
    """Whether a Config.data.dataset value names a file or directory rather than a built-in data set."""
    return name.endswith(SUFFIXES) or "/" in name or os.sep in name


def split_sizes(n: int, sizes=(None, None, None), where: str = "data") -> tuple[int, int, int]:
    """(n_train, n_valid, n_test) for n sequences: each given count is kept; valid and test default to 10 % of n (at
    least one each) and train to the rest.

    Raises:
      DataError: a count below 1, or counts that need more than n sequences.
    """
    n_train, n_valid, n_test = sizes
    for name, v in zip(("n_train", "n_valid", "n_test"), sizes):
        if v is not None and (isinstance(v, bool) or int(v) != v or v < 1):
            raise DataError(f"{where}: {name} must be a positive integer, got {v!r}")
    default = lambda f: max(1, int(round(f * n)))
    n_valid = default(DEFAULT_FRACTIONS[1]) if n_valid is None else int(n_valid)
    n_test = default(DEFAULT_FRACTIONS[2]) if n_test is None else int(n_test)
    n_train = n - n_valid - n_test if n_train is None else int(n_train)
    if n_train < 1 or n_train + n_valid + n_test > n:
        raise DataError(f"{where}: {n} sequences cannot be split into {n_train} training, {n_valid} validation and "
                        f"{n_test} test sequences (set n_train, n_valid, n_test to counts that fit)")
    return n_train, n_valid, n_test


def _check_dt(dt, where: str) -> float:
    try:
        value = float(np.asarray(dt).reshape(()))
    except (TypeError, ValueError):
        raise DataError(f"{where}: the time step dt must be one number, got {np.shape(dt)} values") from None
    if not (np.isfinite(value) and value > 0):
        raise DataError(f"{where}: the time step dt must be a positive number, got {value}")
    return value


def _channels(channels, c: int, where: str) -> tuple[str, ...]:
    if channels is None:
        return tuple(f"ch{i}" for i in range(c))
    names = tuple(str(v) for v in np.asarray(channels).reshape(-1))
    if len(names) != c:
        raise DataError(f"{where}: {len(names)} channel names for {c} channels")
    return names


def _params(params: Mapping[str, np.ndarray], n: int, where: str) -> dict[str, np.ndarray]:
    out = {}
    for name, v in params.items():
        v = np.asarray(v)
        if v.shape != (n,):
            raise DataError(f"{where}: parameter {name!r} has shape {v.shape}, expected ({n},), one value per "
                            f"sequence")
        if not np.issubdtype(v.dtype, np.number) or not np.all(np.isfinite(v)):
            raise DataError(f"{where}: parameter {name!r} must hold finite numbers")
        out[name] = v.astype(np.float64)
    return out


def from_arrays(x, dt: float, params: Mapping[str, np.ndarray] | None = None, channels=None,
                sizes=(None, None, None), seed: int = 0, name: str = "arrays",
                source: str = "arrays given in memory") -> dict[str, Dataset]:
    """Train, valid and test Datasets from one array x (N, C, T) of sequences at time step dt.

    Args:
      params: true per-sequence parameters, name -> (N,), kept with their sequences.
      sizes: (n_train, n_valid, n_test); see `split_sizes`.
      seed: seeds the permutation that assigns sequences to splits (numpy's default_rng).
    """
    where = source
    x = check_sequences(x, where)
    dt = _check_dt(dt, where)
    n, c, _ = x.shape
    params = _params(params or {}, n, where)
    names = _channels(channels, c, where)
    n_train, n_valid, n_test = split_sizes(n, sizes, where)
    order = np.random.default_rng(seed).permutation(n)
    bounds = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid],
              "test": order[n_train + n_valid:n_train + n_valid + n_test]}
    return {split: Dataset(name, split, x[index], dt, names, {k: v[index] for k, v in params.items()},
                           {"index": index}, f"{source} (seed {seed}, {split} {len(index)} of {n})")
            for split, index in bounds.items()}


def _read(path: Path, dt: float | None) -> tuple[dict, float]:
    """The arrays of a .npz or .npy file as a table of keys, and the time step (the file's, checked against `dt`)."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if path.suffix not in SUFFIXES:
        raise DataError(f"{path}: expected a .npz or .npy file of sequences (N, C, T), or a locomotion split "
                        f"directory")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as loaded:
                table = dict(loaded.items())
        else:
            table = {"x": np.load(path, allow_pickle=False)}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read it as a {path.suffix} file ({type(e).__name__}: {e})") from None
    if "dt" in table:
        file_dt = _check_dt(table["dt"], f"{path}: key 'dt'")
        if dt is not None and not np.isclose(float(dt), file_dt, rtol=1e-6, atol=0):
            raise DataError(f"{path}: the file's dt = {file_dt:g} differs from the dt = {dt:g} given")
        dt = file_dt
    if dt is None:
        raise DataError(f"{path}: no time step: store it as key 'dt' in a .npz file, or give it (--set data_dt=... "
                        f"or dt=...)")
    known = {"x", "dt", "channels"} | {f"x_{s}" for s in SPLITS}
    unknown = sorted(k for k in table if k not in known and not k.startswith("param_"))
    if unknown:
        raise DataError(f"{path}: unknown key(s) {unknown}; expected x (or x_train, x_valid, x_test), dt, channels "
                        f"and param_NAME")
    given = [f"x_{s}" for s in SPLITS if f"x_{s}" in table]
    if "x" in table and given:
        raise DataError(f"{path}: holds both x and {', '.join(given)}; give either all sequences (x, split by sizes) "
                        f"or the three splits")
    if "x" not in table and len(given) != len(SPLITS):
        missing = [f"x_{s}" for s in SPLITS if f"x_{s}" not in table]
        raise DataError(f"{path}: no sequences under key x, and {', '.join(missing)} missing: give x (all sequences) "
                        f"or x_train, x_valid and x_test")
    return table, dt


def load_file(path: str | os.PathLike, sizes=(None, None, None), seed: int = 0,
              dt: float | None = None) -> dict[str, Dataset]:
    """Train, valid and test Datasets from a .npz or .npy file, or a locomotion split directory (see the module
    docstring for the layout).

    Raises:
      DataError: a missing, unreadable or corrupt file, a missing or inconsistent key, or invalid values.
    """
    path = Path(path)
    if path.is_dir():
        from jaxphysvae.data import locomotion
        if dt is not None or any(v is not None for v in sizes):
            raise DataError(f"{path}: a locomotion split directory has its own splits and time step; do not give "
                            f"dt, n_train, n_valid or n_test")
        return {split: locomotion.load(split, directory=path) for split in SPLITS}
    table, dt = _read(path, dt)
    if "x" in table:
        return from_arrays(table["x"], dt, _file_params(table), table.get("channels"), sizes, seed, path.stem,
                           f"{path} [x]")
    if any(s is not None for s in sizes):
        raise DataError(f"{path}: the file gives its own splits; do not set n_train, n_valid or n_test")
    return _file_splits(path, table, dt)


def _file_params(table: dict, split: str | None = None) -> dict[str, np.ndarray]:
    """The file's param_NAME arrays (param_NAME_SPLIT for a split) by NAME."""
    suffix = "" if split is None else f"_{split}"
    return {k[len("param_"):len(k) - len(suffix)]: v for k, v in table.items()
            if k.startswith("param_") and k.endswith(suffix)}


def _file_splits(path: Path, table: dict, dt: float) -> dict[str, Dataset]:
    """The Datasets of a file that gives x_train, x_valid and x_test (and param_NAME_SPLIT)."""
    where = str(path)
    stray = sorted(k for k in table if k.startswith("param_") and not k.endswith(tuple(f"_{s}" for s in SPLITS)))
    if stray:
        raise DataError(f"{where}: parameter key(s) {stray} need a split suffix (_train, _valid, _test) when the file "
                        f"gives x_train, x_valid and x_test")
    out = {}
    for split in SPLITS:
        x = check_sequences(table[f"x_{split}"], f"{where} [x_{split}]")
        out[split] = Dataset(path.stem, split, x, dt, _channels(table.get("channels"), x.shape[1], where),
                             _params(_file_params(table, split), x.shape[0], f"{where} [{split}]"), {},
                             f"{where} [x_{split}]")
    shapes = {s: out[s].x.shape[1:] for s in SPLITS}
    if len(set(shapes.values())) != 1:
        raise DataError(f"{where}: the splits differ in channels or length: {shapes}")
    return out


def read_sequences(path: str | os.PathLike, split: str = "test", dt: float | None = None) -> Dataset:
    """The sequences of a data file to run a trained model on: every sequence of the key `x` (or of a .npy file),
    in the file's order, else split `split` (x_SPLIT of a .npz file, data_SPLIT.mat of a locomotion directory)."""
    path = Path(path)
    if path.is_dir():
        return load_file(path)[split]
    table, dt = _read(path, dt)
    if "x" not in table:
        return _file_splits(path, table, dt)[split]
    x = check_sequences(table["x"], f"{path} [x]")
    params = _params(_file_params(table), x.shape[0], str(path))
    return Dataset(path.stem, "all", x, dt, _channels(table.get("channels"), x.shape[1], str(path)), params, {},
                   f"{path} [x]")
