"""Build locomotion splits from the raw files of Lencioni et al. (2019), `SubjectN.mat`.

Each raw file holds a struct `s` whose `Data` array has one entry per stride with `Task`, `Foot`, `Ang` (12 x 101,
degrees; rows named by `s.AngVarName`), `speed`, `strideLength`, `stepWidth` and `cadence`. The builder keeps every
stride with Task == 'Walking', takes the rows HipFlx, KneeFlx and AnkleFlx of `Ang` in radians, and records the
subject, foot (0 = right, 1 = left), speed, stride length, step width and cadence of each stride, as the phys-VAE
`makedata.m` procedure does (angles as `Ang * pi / 180` in float64, bit for bit the published values). Splits are
random over strides, subject-wise (no subject in two splits), or the published one (`published_split`: the
permutation of MATLAB's `rng(1234567890); randperm(844)`, reproduced exactly), and are written in the published
split's format so that `jaxphysvae.data.load("locomotion", ...)` reads them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import scipy.io

from jaxphysvae.files import atomic_path
from jaxphysvae.data.dataset import SPLITS, Dataset, check_sequences
from jaxphysvae.data.locomotion import CHANNELS, DT, NAME, NUM_STEPS
from jaxphysvae.errors import DataError

PUBLISHED_SEED = 1234567890  # the published split: MATLAB rng(1234567890); randperm(844) over all walking strides
PUBLISHED_SIZES = (400, 100)  # train, valid; the rest (344) is the test split
PUBLISHED_STRIDES = 844  # walking strides of Subject1..Subject50
PUBLISHED_COLUMNS = ("foot", "speed", "stride_length", "step_width", "cadence")

ANGLE_ROWS = ("HipFlx", "KneeFlx", "AnkleFlx")
PROPERTIES = {"speed": "speed", "strideLength": "stride_length", "stepWidth": "step_width", "cadence": "cadence"}
FOOT_CODES = {"RX": 0, "LX": 1}
SUBJECT_FILE = re.compile(r"^Subject(\d+)\.mat$")


def subject_files(raw_dir: str | os.PathLike) -> list[Path]:
    """The SubjectN.mat files of `raw_dir`, ordered by N."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(f"raw locomotion directory {raw_dir} does not exist")
    files = sorted((p for p in raw_dir.iterdir() if SUBJECT_FILE.match(p.name)),
                   key=lambda p: int(SUBJECT_FILE.match(p.name).group(1)))
    if not files:
        raise DataError(f"raw locomotion directory {raw_dir} holds no SubjectN.mat files")
    return files


def read_subject(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The walking strides of one raw file.

    Returns:
      'x': float64 (S, 3, 101) radians; 'foot': (S,) 0 right / 1 left; 'speed', 'stride_length', 'step_width',
      'cadence': (S,) in the file's units (m/s, m, m, steps/min); 'subject': (S,) the N of SubjectN.
    """
    path = Path(path)
    match = SUBJECT_FILE.match(path.name)
    if match is None:
        raise DataError(f"{path}: raw file names must be SubjectN.mat")
    try:
        s = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["s"]
        names = [str(n).strip() for n in np.atleast_1d(s.AngVarName)]
        trials = s.Data
    except KeyError:
        raise DataError(f"{path}: has no struct 's'") from None
    except AttributeError as e:
        raise DataError(f"{path}: struct 's' lacks a field ({e})") from None
    except Exception as e:
        raise DataError(f"{path}: cannot read as a MATLAB .mat file ({type(e).__name__}: {e})") from None
    missing = [r for r in ANGLE_ROWS if r not in names]
    if missing:
        raise DataError(f"{path}: AngVarName lacks {missing} (has {names})")
    rows = [names.index(r) for r in ANGLE_ROWS]
    trials = [trials] if isinstance(trials, scipy.io.matlab.mat_struct) else list(np.atleast_1d(trials))
    strides = {k: [] for k in ("x", "foot", *PROPERTIES.values())}
    for j, trial in enumerate(trials):
        try:
            if str(trial.Task).strip() != "Walking":
                continue
            ang = np.asarray(trial.Ang, dtype=np.float64)
            if ang.shape != (len(names), NUM_STEPS):
                raise DataError(f"{path}: stride {j} has Ang of shape {ang.shape}, expected "
                                f"({len(names)}, {NUM_STEPS})")
            foot = str(trial.Foot).strip()
            if foot not in FOOT_CODES:
                raise DataError(f"{path}: stride {j} has Foot {foot!r}, expected 'RX' or 'LX'")
            strides["x"].append(ang[rows] * np.pi / 180)  # makedata.m's order of operations: exact
            strides["foot"].append(FOOT_CODES[foot])
            for field, key in PROPERTIES.items():
                strides[key].append(float(getattr(trial, field)))
        except AttributeError as e:
            raise DataError(f"{path}: stride {j} lacks a field ({e})") from None
    n = len(strides["x"])
    out = {k: np.asarray(v, np.float64) for k, v in strides.items() if k != "x"}
    out["x"] = np.asarray(strides["x"], np.float64).reshape(n, len(ANGLE_ROWS), NUM_STEPS)
    out["subject"] = np.full(n, int(match.group(1)), np.int64)
    if n:
        check_sequences(out["x"], f"{path} (walking strides)")
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class Strides:
    """Walking strides at the raw files' precision.

    Attributes:
      x: float64 (N, 3, 101), radians (hip, knee, ankle flexion).
      covariates: name -> (N,) float64: subject, foot, speed, stride_length, step_width, cadence.
      source: where the strides came from.
    """

    x: np.ndarray
    covariates: dict
    source: str = ""

    @property
    def num_sequences(self) -> int:
        return self.x.shape[0]

    def subset(self, index) -> "Strides":
        return Strides(self.x[index], {k: v[index] for k, v in self.covariates.items()}, self.source)

    def dataset(self, split: str = "all") -> Dataset:
        """As a `Dataset` (float32, as the models use it)."""
        return Dataset(name=NAME, split=split, x=self.x, dt=DT, channels=CHANNELS, covariates=dict(self.covariates),
                       source=self.source)


def read_strides(raw_dir: str | os.PathLike) -> Strides:
    """Every walking stride of every SubjectN.mat in `raw_dir`, in subject order (S1, S2, ..., S50)."""
    files = subject_files(raw_dir)
    per_subject = [read_subject(p) for p in files]
    joined = {k: np.concatenate([s[k] for s in per_subject]) for k in per_subject[0]}
    if len(joined["x"]) == 0:
        raise DataError(f"{raw_dir}: no stride with Task == 'Walking' in {len(files)} files")
    x = joined.pop("x")
    return Strides(x, joined, f"{len(files)} raw files in {raw_dir}")


def published_order(n: int = PUBLISHED_STRIDES) -> np.ndarray:
    """The permutation of MATLAB's `rng(1234567890); randperm(n)`, 0-based: position k of the published split
    holds stride order[k] of the strides in subject order.

    MATLAB's default generator is the Mersenne Twister seeded like NumPy's legacy `RandomState(seed)`, its `rand`
    draws the same 53-bit doubles as `random_sample`, and its `randperm(n)` is the stable sort order of n such
    draws (checked on the 235 strides of 22 subjects whose published positions are known: see the tests).
    """
    return np.argsort(np.random.RandomState(PUBLISHED_SEED).random_sample(n), kind="stable")


def published_split(strides: Strides) -> dict[str, Strides]:
    """The published phys-VAE split from all 844 walking strides of Subject1..Subject50 (read in subject order)."""
    if strides.num_sequences != PUBLISHED_STRIDES or len(np.unique(strides.covariates["subject"])) != 50:
        raise DataError(f"the published split needs the walking strides of all 50 subjects ({PUBLISHED_STRIDES} "
                        f"strides); {strides.source} gives {strides.num_sequences} strides of "
                        f"{len(np.unique(strides.covariates['subject']))} subjects (`jaxphysvae data download`)")
    order = published_order()
    n_train, n_valid = PUBLISHED_SIZES
    index = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid], "test": order[n_train + n_valid:]}
    return {split: strides.subset(i) for split, i in index.items()}


def _counts(sizes, total: int, what: str, test_elsewhere: bool = False) -> tuple[int, int, int]:
    """(train, valid, test) counts from (train, valid) sizes given as counts or as fractions in (0, 1); with
    `test_elsewhere` the two must use all `total` (the test split comes from other data)."""
    if len(sizes) != 2:
        raise DataError(f"split sizes must be (train, valid), got {sizes!r}")
    counts = []
    for s in sizes:
        if isinstance(s, float) and 0 < s < 1:
            counts.append(int(round(s * total)))
        elif isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0:
            counts.append(int(s))
        else:
            raise DataError(f"split size {s!r} must be a positive count or a fraction in (0, 1)")
    test = total - sum(counts)
    if test_elsewhere:
        if test != 0 and sum(isinstance(v, float) for v in sizes) == 2 and abs(test) == 1:
            counts[0] += test  # two fractions that add up to 1 lost or gained one by rounding
        elif test != 0:
            raise DataError(f"with a separate test set, the train and valid sizes must use all {total} {what}; "
                            f"{counts[0]} + {counts[1]} leave {test} (give fractions that add up to 1, such as "
                            f"0.8,0.2)")
        return counts[0], counts[1], 0
    if test < 1 or min(counts) < 1:
        raise DataError(f"impossible split: {counts[0]} train + {counts[1]} valid {what} leave {test} for test, "
                        f"out of {total}")
    return counts[0], counts[1], test


def split_strides(strides: Strides, by: str = "stride", sizes=None, seed: int = 0,
                  test: Strides | None = None) -> dict[str, Strides]:
    """Split strides at random into train, valid and test.

    Args:
      strides: from `read_strides`, with a 'subject' covariate for `by="subject"`.
      by: "stride" (random over strides, as the published split; subjects may appear in several splits) or
        "subject" (random over subjects; no subject appears in two splits).
      sizes: (train, valid) as counts or fractions in (0, 1) of strides (by="stride", default (400, 100)) or of
        subjects (by="subject", default (0.6, 0.2)); the rest is the test split. With `test`, they must use every
        stride or subject (default (0.8, 0.2)).
      seed: the seed of the random permutation.
      test: strides of other data to be the test split (say, other people's: `read_strides` of another raw
        directory); with by="subject", none of its subjects may be among `strides`'.
    """
    rng = np.random.default_rng(seed)
    elsewhere = test is not None
    if elsewhere and by == "subject":
        shared = np.intersect1d(strides.covariates["subject"], test.covariates["subject"])
        if shared.size:
            raise DataError(f"the separate test set shares subject(s) {shared.astype(int).tolist()} with the "
                            f"training data: a subject-wise split needs other people in the test set")
    default = {"stride": (400, 100), "subject": (0.6, 0.2)}.get(by) if not elsewhere else (0.8, 0.2)
    sizes = default if sizes is None else sizes
    if by == "stride":
        n_train, n_valid, _ = _counts(sizes, strides.num_sequences, "strides", elsewhere)
        order = rng.permutation(strides.num_sequences)
        index = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid],
                 "test": order[n_train + n_valid:]}
    elif by == "subject":
        if "subject" not in strides.covariates:
            raise DataError("a subject-wise split needs the 'subject' covariate of each stride")
        subjects = np.unique(strides.covariates["subject"])
        n_train, n_valid, _ = _counts(sizes, len(subjects), "subjects", elsewhere)
        order = rng.permutation(subjects)
        groups = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid],
                  "test": order[n_train + n_valid:]}
        index = {k: np.flatnonzero(np.isin(strides.covariates["subject"], g)) for k, g in groups.items()}
    else:
        raise DataError(f"unknown split kind {by!r}; expected 'stride' or 'subject'")
    out = {split: strides.subset(np.sort(i) if by == "subject" else i) for split, i in index.items()}
    if elsewhere:
        out["test"] = test
    return out


def write_split(splits: dict[str, Strides], out_dir: str | os.PathLike, columns=None) -> Path:
    """Write splits in the published format: data_{split}.mat (variable `data`, float64 as read) and
    prop_{split}.txt (a header row, then one row per stride; `columns` default: the published five, then any
    others such as subject)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        ds = splits[split]
        with atomic_path(out_dir / f"data_{split}.mat") as tmp:
            scipy.io.savemat(tmp, {"data": np.asarray(ds.x, np.float64)})
        if columns is None:
            names = [c for c in PUBLISHED_COLUMNS if c in ds.covariates]
            names += [c for c in ds.covariates if c not in names]
        else:
            names = list(columns)
        table = np.stack([ds.covariates[c] for c in names], axis=1)
        with atomic_path(out_dir / f"prop_{split}.txt") as tmp:
            lines = [" ".join(names)] + [" ".join(f"{v:.15g}" for v in row) for row in table]
            tmp.write_text("\n".join(lines) + "\n")
    return out_dir
