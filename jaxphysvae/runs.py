"""What every run and sweep starts from: the data splits of a configuration, the model with its compiled functions
(shared within a process), and the versions recorded with results."""

from __future__ import annotations

import collections
import platform

import jax
import numpy as np

from jaxphysvae import data
from jaxphysvae.config import Config
from jaxphysvae.errors import ConfigError
from jaxphysvae.model import RUN_ONLY, PhysVAE
from jaxphysvae.train import Functions, make_functions


def versions() -> dict:
    """The versions of Python and the numerical packages, the device kind and the platform."""
    import diffrax
    import distrax
    import flax
    import optax
    return {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
            "optax": optax.__version__, "diffrax": diffrax.__version__, "distrax": distrax.__version__,
            "device": str(jax.devices()[0].device_kind), "platform": platform.platform()}


def load_splits(config: Config) -> dict[str, data.Dataset]:
    """Train, valid and test splits of the configured data set."""
    sizes = {"train": config.n_train, "valid": config.n_valid, "test": config.n_test}
    out = {}
    for split in data.SPLITS:
        options = {}
        if config.dataset in data.GENERATED:
            options = {"seed": config.data_seed}
            if sizes[split] is not None:
                options["n"] = sizes[split]
        out[split] = data.load(config.dataset, split, **options)
    if config.batch_size > out["train"].num_sequences:
        raise ConfigError(f"batch_size {config.batch_size} exceeds the {out['train'].num_sequences} training "
                          f"sequences")
    return out


def data_stats(train: data.Dataset) -> dict:
    """Per-channel standard deviation, minimum and maximum (C,) of the training data, for input noise."""
    return {"std": train.x.std(axis=(0, 2)), "min": train.x.min(axis=(0, 2)), "max": train.x.max(axis=(0, 2))}


_COMPILED: collections.OrderedDict = collections.OrderedDict()
COMPILED_KEPT = 8  # models whose compiled functions a process keeps (least recently used dropped first)


def compiled(config: Config, splits: dict) -> tuple[PhysVAE, Functions]:
    """The model and its jitted functions, shared by every run of the same architecture, data shape and training
    statistics in this process (the fields that only choose data and schedule, model.RUN_ONLY, do not change what is
    compiled). The COMPILED_KEPT most recently used are kept."""
    x = splits["train"]
    stats = data_stats(x)
    key = (tuple((k, v) for k, v in sorted(config.to_json().items()) if k not in RUN_ONLY),
           x.num_channels, x.num_steps, x.dt, tuple(np.asarray(v, np.float32).tobytes() for v in stats.values()))
    if key not in _COMPILED:
        model = PhysVAE(config, x.num_channels, x.num_steps, x.dt, data_stats=stats)
        _COMPILED[key] = (model, make_functions(model))
        while len(_COMPILED) > COMPILED_KEPT:
            _COMPILED.popitem(last=False)
    _COMPILED.move_to_end(key)
    return _COMPILED[key]
