"""The `Dataset` value type shared by every data set, and the checks applied to arrays entering the library."""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from jaxphysvae.errors import DataError

SPLITS = ("train", "valid", "test")


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


def check_sequences(x, where: str, channels: int | None = None, length: int | None = None) -> np.ndarray:
    """Validate an array of sequences and return it as float32 of shape (N, C, T).

    Args:
      x: array-like of shape (N, C, T).
      where: what the array is (a file name, a variable) for error messages.
      channels, length: the expected C and T, or None to accept any.

    Raises:
      DataError: wrong rank or shape, a non-numeric dtype, no sequences, NaN or Inf values.
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise DataError(f"{where}: expected an array of shape (N, C, T), got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise DataError(f"{where}: expected {channels} channels on axis 1, got shape {x.shape}")
    if length is not None and x.shape[2] != length:
        raise DataError(f"{where}: expected {length} time points on axis 2, got shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{where}: holds no sequences (shape {x.shape})")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{where}: expected real numbers, got dtype {x.dtype}")
    bad = ~np.isfinite(x)
    if bad.any():
        n_bad_seq = int(bad.any(axis=(1, 2)).sum())
        raise DataError(f"{where}: {int(bad.sum())} NaN or Inf values in {n_bad_seq} of {x.shape[0]} sequences")
    return x.astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A set of N sequences of C channels on a uniform time grid of T points.

    Attributes:
      name: the data set's name ("pendulum", "advdif", "locomotion", ...).
      split: "train", "valid" or "test".
      x: float32 array of shape (N, C, T), in the data's own units (radians for angles).
      dt: time step between consecutive points, in the data's time unit (seconds; the locomotion grid is in
        units of 1/100 of a stride, for which the references use dt = 0.02).
      channels: C names, one per channel.
      params: true physics parameters where known, name -> float array of shape (N,); empty for real data.
      covariates: other per-sequence information (speeds, subject ids, ...), name -> array of shape (N,).
      source: where the data came from (a file path, or the generator and its seed).
    """

    name: str
    split: str
    x: np.ndarray
    dt: float
    channels: tuple[str, ...]
    params: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    covariates: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "x", check_sequences(self.x, f"{self.name}/{self.split}"))
        n, c, _ = self.x.shape
        if len(self.channels) != c:
            raise DataError(f"{self.name}/{self.split}: {len(self.channels)} channel names for {c} channels")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise DataError(f"{self.name}/{self.split}: time step dt must be positive, got {self.dt}")
        for kind, table in (("params", self.params), ("covariates", self.covariates)):
            for key, value in table.items():
                if np.shape(value) != (n,):
                    raise DataError(f"{self.name}/{self.split}: {kind}[{key!r}] has shape {np.shape(value)}, "
                                    f"expected ({n},)")

    @property
    def num_sequences(self) -> int:
        return self.x.shape[0]

    @property
    def num_channels(self) -> int:
        return self.x.shape[1]

    @property
    def num_steps(self) -> int:
        return self.x.shape[2]

    @property
    def t(self) -> np.ndarray:
        """The time grid, float32 of shape (T,), starting at 0."""
        return (np.arange(self.num_steps) * self.dt).astype(np.float32)

    def subset(self, index) -> "Dataset":
        """The sequences at `index` (an integer array or a boolean mask of shape (N,)), with their parameters."""
        return dataclasses.replace(
            self, x=self.x[index],
            params={k: v[index] for k, v in self.params.items()},
            covariates={k: v[index] for k, v in self.covariates.items()})

    def summary(self) -> str:
        """A few human-readable lines: size, shape, value range per channel, parameters and source."""
        lines = [f"{self.name}/{self.split}: {self.num_sequences} sequences x {self.num_channels} channels x "
                 f"{self.num_steps} steps, dt = {self.dt:g}",
                 f"  source: {self.source}"]
        width = max(len(c) for c in self.channels)
        shown = self.channels if self.num_channels <= 8 else self.channels[:3] + ("...",) + self.channels[-2:]
        for name in shown:
            if name == "...":
                lines.append("  ...")
                continue
            v = self.x[:, self.channels.index(name)]
            lines.append(f"  {name:<{width}}  min {v.min():+.4f}  max {v.max():+.4f}  mean {v.mean():+.4f}  "
                         f"std {v.std():.4f}")
        for kind, table in (("param", self.params), ("covariate", self.covariates)):
            for key, v in table.items():
                v = np.asarray(v)
                if np.issubdtype(v.dtype, np.number):
                    lines.append(f"  {kind} {key}: min {v.min():.4g}  max {v.max():.4g}  mean {v.mean():.4g}")
                else:
                    lines.append(f"  {kind} {key}: {len(np.unique(v))} distinct values")
        return "\n".join(lines)
