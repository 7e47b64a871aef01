"""Static configuration (shapes, architecture, solver, training schedule) and dynamic hyper-parameters.

`Config` fixes what is compiled: changing it means a new compiled step. `HParams` holds every number a sweep may
vary; it is a pytree of float32 scalars passed to the step as data, so `jax.vmap` over a stack of HParams trains
several models in one compiled step.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, NamedTuple

import numpy as np

from jaxphysvae.errors import ConfigError

# jax and the modules that declare the other choices are imported where they are used, so that listing presets or
# reading `--help` does not start jax (about 2 s).

UNMIXERS = ("none", "residual", "linear")
PPC = ("all", "residual")
FLOW_KL = ("exact", "published_base_kl")


class HParams(NamedTuple):
    """Hyper-parameters that are data, not code: float32 scalars (or stacks of them for a sweep).

    Attributes:
      kl_weight: beta_KL, the weight of the KL term (1 in the references).
      alpha: weight of R_ppc, also added to the KL weight (METHOD.md section 1).
      beta: weight of R_DA2, the physics data augmentation.
      gamma: weight of R_DA1, the unmixing regulariser.
      lr: Adam's learning rate.
      x_lnvar: log of the observation noise variance sigma^2 (the initial value when it is learned).
      noise: level of the input or feature noise model in training (0 = none).
      warmup_steps, decay_steps, lr_floor: the learning-rate schedule (jaxphysvae.train.learning_rate): a linear
        warm-up over warmup_steps optimisation steps, then a half-cosine decay over decay_steps steps to
        lr * lr_floor (decay_steps = 0: no decay). An epoch takes ceil(n_train / batch_size) steps.
    """

    kl_weight: Any = 1.0
    alpha: Any = 0.0
    beta: Any = 0.0
    gamma: Any = 0.0
    lr: Any = 1e-3
    x_lnvar: Any = -9.0
    noise: Any = 0.0
    warmup_steps: Any = 0.0
    decay_steps: Any = 0.0
    lr_floor: Any = 0.0

    @classmethod
    def create(cls, **values) -> "HParams":
        """HParams with float32 (never weakly typed) values; unknown names are a ConfigError."""
        unknown = set(values) - set(cls._fields)
        if unknown:
            raise ConfigError(f"unknown hyper-parameter(s) {sorted(unknown)}; known: {', '.join(cls._fields)}")
        merged = cls()._replace(**values)
        for name, v in merged._asdict().items():
            if not np.all(np.isfinite(np.asarray(v, np.float64))):
                raise ConfigError(f"hyper-parameter {name} must be finite, got {v}")
        if np.any((np.asarray(merged.noise) < 0) | (np.asarray(merged.noise) > 1)):
            raise ConfigError(f"noise level must lie in [0, 1], got {merged.noise}")
        if np.any(np.asarray(merged.lr) <= 0):
            raise ConfigError(f"learning rate must be positive, got {merged.lr}")
        if np.any((np.asarray(merged.lr_floor) < 0) | (np.asarray(merged.lr_floor) > 1)):
            raise ConfigError(f"lr_floor (the final fraction of lr) must lie in [0, 1], got {merged.lr_floor}")
        for name in ("kl_weight", "alpha", "beta", "gamma", "noise", "warmup_steps", "decay_steps"):
            if np.any(np.asarray(getattr(merged, name)) < 0):
                raise ConfigError(f"hyper-parameter {name} must be >= 0, got {getattr(merged, name)}")
        import jax.numpy as jnp
        return cls(*(jnp.asarray(v, jnp.float32) for v in merged))

    def to_json(self) -> dict:
        return {k: np.asarray(v).tolist() for k, v in self._asdict().items()}


# Every Config field belongs to exactly one group (tests/test_config.py checks it, so a new field must be placed):
# what selects the data, what fixes the model's computation (architecture, posteriors, objective, solver), what fixes
# the optimiser's step (compiled into the training step too), and what only schedules a run on the host.
FIELD_GROUPS = {
    "data": ("dataset", "data_seed", "n_train", "n_valid", "n_test", "data_dt"),
    "model": ("physics", "use_physics", "dim_z_phy", "dim_z_aux1", "dim_z_aux2", "hamiltonian_hidden",
              "hamiltonian_separable", "observation_map", "activation", "feat_hidden", "feat_dim", "head_hidden",
              "unmixer", "unmixer_hidden", "correction_hidden", "residual_hidden", "init_hidden", "flow_phy",
              "flow_aux1", "flow_aux2", "flow_kl", "flow_margin", "lnvar_min", "attention_phy", "attention_aux1",
              "attention_aux2", "attention_dim", "noise", "noise_seq_fraction", "ppc", "learn_x_lnvar", "solver",
              "substeps", "rtol", "atol", "max_steps"),
    "optimisation": ("batch_size", "weight_decay", "grad_clip", "grad_clip_norm", "adam_eps", "batch_shards"),
    "schedule": ("epochs", "eval_every", "eval_batch_size", "rollbacks", "rollback_lr_factor"),
}
# the fields that never enter a traced function: they choose the data and the schedule of a run
RUN_ONLY = FIELD_GROUPS["data"] + FIELD_GROUPS["schedule"]


def stack(hparams: list[HParams]) -> HParams:
    """Stack HParams along a new leading axis, for `jax.vmap`."""
    import jax
    import jax.numpy as jnp
    return jax.tree.map(lambda *v: jnp.stack(v), *hparams)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything static about a model and its training.

    Latent dimensions: -1 removes the component, 0 keeps its network without latent input.
    """

    # data: a built-in set (pendulum, advdif, locomotion) or the path of your own .npz / .npy file or locomotion
    # split directory (jaxphysvae.data.arrays)
    dataset: str = "pendulum"
    data_seed: int = 0  # the generators' seed; for a file of sequences, the seed of its split
    n_train: int | None = None  # sequences per split: generated sets (None = the reference sizes) and files given
    n_valid: int | None = None  # as one array x (None = 80 / 10 / 10 %)
    n_test: int | None = None
    data_dt: float | None = None  # the time step of a .npy file (a .npz file stores its own as key dt)
    # physics: a built-in system (pendulum, diffusion, hamiltonian) or the import path "package.module:Name" of a
    # PhysicsModel of your own (jaxphysvae.physics.user)
    physics: str = "pendulum"
    use_physics: bool = True  # False: f_P = 0 (the NN-only and NN + solver baselines)
    dim_z_phy: int = 1
    dim_z_aux1: int = -1
    dim_z_aux2: int = -1
    hamiltonian_hidden: tuple[int, ...] = (128, 128)
    hamiltonian_separable: bool = False
    observation_map: bool = False
    # networks
    activation: str = "elu"
    feat_hidden: tuple[int, ...] = (128, 128)
    feat_dim: int = 256
    head_hidden: tuple[int, ...] = ()
    unmixer: str = "none"
    unmixer_hidden: tuple[int, ...] = (128, 128)
    correction_hidden: tuple[int, ...] = (64, 64)
    residual_hidden: tuple[int, ...] = (128, 128)
    init_hidden: tuple[int, ...] = (128, 128)
    # posteriors: planar-flow lengths per latent group, attention context per branch, noise model
    flow_phy: int = 0
    flow_aux1: int = 0
    flow_aux2: int = 0
    flow_kl: str = "exact"  # "published_base_kl" drops the log-determinants (METHOD.md section 4, defect 1)
    flow_margin: float = 0.0  # keeps w^T u_hat >= -1 + flow_margin in every planar step (0: as published)
    lnvar_min: float | None = None  # smooth lower bound of the posterior log-variances (None: unbounded, as published)
    attention_phy: str = "none"
    attention_aux1: str = "none"
    attention_aux2: str = "none"
    attention_dim: int = 32
    noise: str = "none"  # training noise model; its level is hparams.noise
    noise_seq_fraction: float = 0.1
    # objective
    ppc: str = "all"
    learn_x_lnvar: bool = False
    # solver
    solver: str = "euler"
    substeps: int = 1
    rtol: float = 1e-4
    atol: float = 1e-6
    max_steps: int = 4096
    # optimisation
    batch_size: int = 200
    epochs: int = 5000
    eval_every: int = 1
    eval_batch_size: int = 500
    weight_decay: float = 1e-6
    grad_clip: float = 5.0  # clip every gradient value to [-5, 5], as the references do
    grad_clip_norm: float | None = None  # also clip the global gradient norm (stops Adam's rare explosive spikes)
    adam_eps: float = 1e-3
    # data parallelism: split every training batch into this many equal groups, one per local device (results
    # equal the unsplit step's up to float rounding; see jaxphysvae.train)
    batch_shards: int = 1
    # recovery: an epoch whose loss or gradient turns non-finite is undone; training goes on from the state of the
    # best validation epoch (parameters and optimiser state) with the learning rate scaled by rollback_lr_factor, at
    # most `rollbacks` times per run or sweep member (0: stop as diverged). Each rollback is a row of metrics.jsonl.
    rollbacks: int = 3
    rollback_lr_factor: float = 0.5

    def __post_init__(self):
        from jaxphysvae.attention import CONTEXTS
        from jaxphysvae.data import DATASETS
        from jaxphysvae.nets import activation_fn
        from jaxphysvae.noise import NOISE
        from jaxphysvae.physics.user import check_spec
        check_spec(self.physics)
        from jaxphysvae.data.arrays import is_path
        if self.dataset not in DATASETS and not is_path(self.dataset):
            raise ConfigError(f"unknown dataset {self.dataset!r}; expected one of {', '.join(DATASETS)}, or the path "
                              f"of a .npz / .npy file of sequences (N, C, T) or of a locomotion split directory")
        if self.data_dt is not None and (self.dataset in DATASETS or not np.isfinite(self.data_dt)
                                         or self.data_dt <= 0):
            raise ConfigError(f"data_dt (the time step of your own data file) must be a positive number and needs a "
                              f"data file as dataset; got data_dt={self.data_dt} with dataset {self.dataset!r}")
        choices = {"unmixer": UNMIXERS, "ppc": PPC,
                   "flow_kl": FLOW_KL, "attention_phy": CONTEXTS, "attention_aux1": CONTEXTS,
                   "attention_aux2": CONTEXTS, "noise": NOISE}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"unknown {key} {getattr(self, key)!r}; expected one of {', '.join(allowed)}")
        activation_fn(self.activation)
        for key in ("dim_z_aux1", "dim_z_aux2"):
            if getattr(self, key) < -1:
                raise ConfigError(f"{key} must be -1 (removed), 0 or positive, got {getattr(self, key)}")
        if self.dim_z_phy < 0:
            raise ConfigError(f"dim_z_phy must be 0 or positive, got {self.dim_z_phy}")
        self.solver_config()  # the solver's fields are checked where they are used
        for key in ("batch_size", "epochs", "eval_every", "eval_batch_size", "feat_dim",
                    "batch_shards"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be a positive integer, got {getattr(self, key)}")
        for key in ("n_train", "n_valid", "n_test"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"{key} must be a positive integer or None, got {getattr(self, key)}")
        for key in ("flow_phy", "flow_aux1", "flow_aux2"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} (number of planar steps) must be >= 0, got {getattr(self, key)}")
        if isinstance(self.rollbacks, bool) or not isinstance(self.rollbacks, int) or self.rollbacks < 0:
            raise ConfigError(f"rollbacks must be an integer >= 0 (0: no rollback), got {self.rollbacks!r}")
        if not 0.0 < self.rollback_lr_factor <= 1.0:
            raise ConfigError(f"rollback_lr_factor must lie in (0, 1], got {self.rollback_lr_factor}")
        if not 0.0 <= self.flow_margin < 1.0:
            raise ConfigError(f"flow_margin must lie in [0, 1), got {self.flow_margin}")
        if self.lnvar_min is not None and not np.isfinite(self.lnvar_min):
            raise ConfigError(f"lnvar_min must be a finite number or None, got {self.lnvar_min}")
        if self.attention_dim < 1:
            raise ConfigError(f"attention_dim must be a positive integer, got {self.attention_dim}")
        if not 0.0 <= self.noise_seq_fraction <= 1.0:
            raise ConfigError(f"noise_seq_fraction must lie in [0, 1], got {self.noise_seq_fraction}")
        if self.batch_size % self.batch_shards:
            raise ConfigError(f"batch_size {self.batch_size} must be a multiple of batch_shards {self.batch_shards}")
        if self.batch_shards > 1 and "batch" in (self.attention_phy, self.attention_aux1, self.attention_aux2):
            raise ConfigError("a 'batch' attention context couples every sequence of a batch: its batches cannot be "
                              "split over devices (batch_shards must be 1; the 'seq' context can be split)")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise ConfigError(f"grad_clip_norm must be positive or None, got {self.grad_clip_norm}")
        if self.weight_decay < 0 or self.grad_clip <= 0 or self.adam_eps <= 0:
            raise ConfigError("weight_decay must be >= 0, grad_clip and adam_eps > 0")
        if self.unmixer != "none" and not self.use_physics:
            raise ConfigError("an unmixer needs physics (use_physics=True): it cleans the input for the physics "
                              "encoder")

    def solver_config(self):
        """The solver fields as the physics.integrate.SolverConfig the decoder uses (which validates them)."""
        from jaxphysvae.physics.integrate import SolverConfig
        return SolverConfig(self.solver, self.substeps, self.rtol, self.atol, self.max_steps)

    def replace(self, **changes) -> "Config":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown configuration key(s) {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> "Config":
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(values) - set(fields)
        if unknown:
            raise ConfigError(f"unknown configuration key(s) {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def resumable(values: dict) -> dict:
    """A configuration's fields as JSON values, for comparing a stored run's with the current one: the defaults of
    fields added since the run was stored are filled in, and epochs, which a resume may change, is left out."""
    defaults = json.loads(json.dumps(Config().to_json()))
    return {k: v for k, v in {**defaults, **json.loads(json.dumps(values))}.items() if k != "epochs"}


def parse_value(text: str, kind):
    """Parse a `--set key=value` string to `kind`, a Config field's declared type (`null` for an optional one)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        kind = next(a for a in options if a is not type(None))
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"expected true or false, got {text!r}")
        return value
    if typing.get_origin(kind) is tuple:
        value = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"expected a list of integers such as [128,128], got {text!r}")
        return tuple(value)
    if kind is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(f"expected a number, got {text!r}")
        return float(value)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"expected an integer, got {text!r}")
        return value
    return text


def apply_overrides(config: Config, hparams: dict, overrides: list[str]) -> tuple[Config, dict]:
    """Apply `key=value` strings to a Config and a dict of hyper-parameter values."""
    config_changes = {}
    hparams = dict(hparams)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if key in HParams._fields:
            try:
                hparams[key] = float(text)
            except ValueError:
                raise ConfigError(f"hyper-parameter {key}: expected a number, got {text!r}") from None
        elif key in {f.name for f in dataclasses.fields(Config)}:
            try:
                config_changes[key] = parse_value(text, typing.get_type_hints(Config)[key])
            except ConfigError as e:
                raise ConfigError(f"{key}: {e}") from None
        else:
            raise ConfigError(f"unknown key {key!r} in --set; configuration keys: "
                              f"{', '.join(f.name for f in dataclasses.fields(Config))}; hyper-parameters: "
                              f"{', '.join(HParams._fields)}")
    return config.replace(**config_changes), hparams
