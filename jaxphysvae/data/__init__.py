"""Data sets: the synthetic pendulum and advection-diffusion generators, and the human locomotion strides.

    ds = jaxphysvae.data.load("pendulum", "train")        # a Dataset; x of shape (N, C, T)
    for batch in jaxphysvae.data.batches(ds.x, 100, key): ...
"""

from __future__ import annotations

import importlib
import inspect

from jaxphysvae.data import locomotion
from jaxphysvae.data.batching import Batch, batches, num_batches
from jaxphysvae.data.dataset import SPLITS, Dataset, check_sequences
from jaxphysvae.errors import DataError

DATASETS = ("pendulum", "advdif", "locomotion")
GENERATED = ("pendulum", "advdif")  # made by their generators from a seed, in sizes `n`; the others are read from files


def load(name: str, split: str, **options) -> Dataset:
    """Load split `split` ("train", "valid", "test") of data set `name`.

    Options:
      pendulum, advdif: `n` (number of sequences, default 1000 / 500 / 1000), `seed` (default 0),
        `data_dir` (cache directory, default $JAXPHYSVAE_DATA_DIR or ~/.cache/jaxphysvae).
      locomotion: `directory` (split directory, default $JAXPHYSVAE_LOCOMOTION_DIR, else the packaged split),
        `verify` (MD5 check, default True).
    """
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)} (or, in a configuration "
                        f"or `data info`, the path of a .npz / .npy file of your own)")
    # the generators (jax, diffrax) are imported only when a generated data set is asked for
    module = importlib.import_module(f"jaxphysvae.data.{name}")
    try:
        inspect.signature(module.load).bind(split, **options)
    except TypeError as e:
        raise DataError(f"bad option for data set {name!r}: {e}") from None
    return module.load(split, **options)


__all__ = ["DATASETS", "GENERATED", "SPLITS", "Batch", "Dataset", "DataError", "batches", "check_sequences", "load",
           "num_batches"]
