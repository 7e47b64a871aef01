"""What every run and sweep starts from: the data splits of a configuration, the model with its compiled functions
(shared within a process), and the versions recorded with results."""

from __future__ import annotations

import collections
import platform
from pathlib import Path

import jax
import numpy as np

from jaxphysvae import data, rundir
from jaxphysvae.config import Config, HParams
from jaxphysvae.errors import ConfigError
from jaxphysvae.model import PhysVAE
from jaxphysvae.physics import NoPhysics, PhysicsModel
from jaxphysvae.physics.user import describe as describe_physics
from jaxphysvae.physics.user import differences as physics_differences
from jaxphysvae.physics.user import import_path as physics_import_path
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
    """Train, valid and test splits of the configured data set: a built-in one, or a user's file or directory
    (jaxphysvae.data.arrays.load_file, split by n_train / n_valid / n_test and data_seed)."""
    sizes = {"train": config.data.n_train, "valid": config.data.n_valid, "test": config.data.n_test}
    if config.data.dataset not in data.DATASETS:  # a user's file
        from jaxphysvae.data.arrays import load_file
        d = config.data
        out = load_file(d.dataset, tuple(sizes.values()), seed=d.data_seed, dt=d.data_dt)
        _check_batch_size(config, out["train"])
        return out
    given = [f"n_{split}" for split, n in sizes.items() if n is not None]
    if given and config.data.dataset not in data.GENERATED:
        raise ConfigError(f"{', '.join(given)}: the {config.data.dataset} data set's splits are fixed; split sizes "
                          f"apply to the generated sets ({', '.join(data.GENERATED)}) and to your own file's x")
    out = {}
    for split in data.SPLITS:
        options = {}
        if config.data.dataset in data.GENERATED:
            options = {"seed": config.data.data_seed}
            if sizes[split] is not None:
                options["n"] = sizes[split]
        out[split] = data.load(config.data.dataset, split, **options)
    _check_batch_size(config, out["train"])
    return out


def _check_batch_size(config: Config, train: data.Dataset) -> None:
    if config.optimisation.batch_size > train.num_sequences:
        raise ConfigError(f"batch_size {config.optimisation.batch_size} exceeds the {train.num_sequences} training "
                          f"sequences")


def data_stats(train: data.Dataset) -> dict:
    """Per-channel standard deviation, minimum and maximum (C,) of the training data, for input noise."""
    return {"std": train.x.std(axis=(0, 2)), "min": train.x.min(axis=(0, 2)), "max": train.x.max(axis=(0, 2))}


_COMPILED: collections.OrderedDict = collections.OrderedDict()
COMPILED_KEPT = 8  # models whose compiled functions a process keeps (least recently used dropped first)


def compiled(config: Config, splits: dict, physics: PhysicsModel | None = None) -> tuple[PhysVAE, Functions]:
    """The model and its jitted functions, shared by every run of the same architecture, data shape and training
    statistics in this process (only config.model and config.optimisation change what is compiled; the data and
    schedule parts do not). The COMPILED_KEPT most recently used are kept.

    physics: a PhysicsModel object to use instead of the one config.model.physics names (the same object shares the
    compiled functions; another object, even an equal one, gets its own).
    """
    x = splits["train"]
    stats = data_stats(x)
    key = (config.model, config.optimisation, x.num_channels, x.num_steps, x.dt,
           tuple(np.asarray(v, np.float32).tobytes() for v in stats.values()), None if physics is None else id(physics))
    if key not in _COMPILED:
        model = PhysVAE(config, x.num_channels, x.num_steps, x.dt, physics=physics, data_stats=stats)
        # holding the physics object keeps its id from reuse
        _COMPILED[key] = (model, make_functions(model, config.optimisation), physics)
        while len(_COMPILED) > COMPILED_KEPT:
            _COMPILED.popitem(last=False)
    _COMPILED.move_to_end(key)
    return _COMPILED[key][:2]


def with_physics(config: Config, physics: PhysicsModel | None) -> Config:
    """`config` with, for a PhysicsModel object passed by a caller, physics set to the import path of its class
    where it has one (so that a run's config.json names it and `eval`, `predict` and `--resume` can rebuild it; the
    recorded description then catches a class whose default construction differs from the object)."""
    spec = None if physics is None else physics_import_path(physics)
    return config if spec is None else config.replace(physics=spec)


def _own_physics(model: PhysVAE) -> PhysicsModel:
    """The physics model itself (a physics-free model keeps the one it would use, for its description)."""
    p = model.physics
    return p.base if isinstance(p, NoPhysics) else p


def physics_description(model: PhysVAE) -> dict:
    """The description of a model's physics recorded with a run (jaxphysvae.physics.user.describe)."""
    return describe_physics(_own_physics(model))


def check_physics(where: Path, record: dict, model: PhysVAE) -> None:
    """Refuse a model whose physics differs from the one recorded in a run's or sweep's configuration."""
    recorded = record.get("physics")
    if recorded is None:  # a run from before physics were recorded
        return
    differ = physics_differences(recorded, _own_physics(model))
    if differ:
        raise ConfigError(f"{where}: the physics model differs from the one it was trained with: {'; '.join(differ)}."
                          f" Pass the same physics (physics=... in Python, or the same import path as the "
                          f"configuration's physics)")


def rebuild(where: Path, record: dict, config: Config, hparams: HParams, physics: PhysicsModel | None = None,
            splits: dict | None = None, other_data: bool = False, kind: str = "run"):
    """(splits, model, functions, parameter template) of a stored run or sweep in `where`, whose configuration file
    holds `record`: the splits are loaded as `config` says (or `splits` are used) and must be those recorded at
    training time unless `other_data`; the model is compiled (shared, see `compiled`) with `physics` or the one
    config.model.physics names, which must match the recorded description."""
    splits = load_splits(config) if splits is None else splits
    differ = rundir.data_differences(record.get("data", {}), rundir.data_identity(splits))
    if differ and not other_data:
        raise ConfigError(f"{where}: the data differ from those this {kind} was trained on: {'; '.join(differ)}. "
                          f"Point to the same data (for locomotion, check ${data.locomotion.LOCOMOTION_DIR_ENV}), or "
                          f"evaluate on these data on purpose (other_data=True, --other-data)")
    model, fns = compiled(config, splits, physics)
    check_physics(where, record, model)
    return splits, model, fns, fns.init(jax.random.key(0), hparams).params
