"""Static configuration and dynamic hyper-parameters.

`Config` is static, in four parts: `DataConfig` (which data), `ModelConfig` (what the model computes, with its
`SolverConfig`), `OptimisationConfig` (how the compiled step updates) and `ScheduleConfig` (epochs, evaluation,
rollbacks). Changing the model or optimisation part means a new compiled program; the data and schedule parts never
enter one. Every field also has a flat name (FIELD_GROUPS), used by `--set`, `Config(**flat)`, `Config.replace` and
a run's config.json. `HParams` holds every number a sweep may vary; it is a pytree of float32 scalars passed to the
step as data, so `jax.vmap` over a stack of HParams trains several models in one compiled step.
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
Z_PHY_SPACES = ("physical", "logit")


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
      mix: the mixing augmentation's largest partner weight in [0, 1] (jaxphysvae.mixing; 0 = none): each training
        sequence blended with a random other sequence of its batch, by a weight drawn from Uniform(0, mix).
      decoder_decay: decoupled weight decay of the decoder alone (AdamW's, on the physics model's parameters and
        the correction and residual networks; jaxphysvae.train.decoder_decay): each step also subtracts
        lr * decoder_decay * p from those parameters p. 0 = none; independent of the L2 `weight_decay` option.
      encoder_lr_scale: the inference side's learning rate as a fraction of lr (jaxphysvae.train.encoder_lr_scales):
        the encoder's networks, the initial-state network, flows and attention step at lr * encoder_lr_scale, the
        generative side (the physics model's parameters, the correction and residual networks, a learned x_lnvar)
        at lr. 1 = one rate for all (the references); 0 freezes the inference side.
      retime: the re-timing augmentation's largest shift, a fraction of the sequence (jaxphysvae.timewarp.
        retime_sequences; 0 = none): each training sequence re-timed about the model's time_warp_anchor by a shift
        drawn from Uniform(-retime, retime) times (T - 1) samples; below min(time_warp_anchor, 1 -
        time_warp_anchor), which keeps time's order (`check_hparams`).
      ema_decay: the decay d of the exponential moving average of the parameters that evaluation, the best
        checkpoints and the results use (jaxphysvae.train.average_parameters; Polyak averaging): after step t,
        avg <- d_t avg + (1 - d_t) params with d_t = min(d, (1 + t) / (10 + t)). In [0, 1); 0 = none (the average is
        the parameters; the references). Its half-life is about 0.69 / (1 - d) steps.
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
    mix: Any = 0.0
    decoder_decay: Any = 0.0
    encoder_lr_scale: Any = 1.0
    retime: Any = 0.0
    ema_decay: Any = 0.0

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
        for name, what in _UNIT_INTERVAL.items():
            v = np.asarray(getattr(merged, name))
            if np.any((v < 0) | (v > 1)):
                raise ConfigError(f"{what} must lie in [0, 1], got {getattr(merged, name)}")
        if np.any((np.asarray(merged.ema_decay) < 0) | (np.asarray(merged.ema_decay) >= 1)):
            raise ConfigError(f"ema_decay (the parameter average's decay) must lie in [0, 1), got {merged.ema_decay}")
        if np.any(np.asarray(merged.lr) <= 0):
            raise ConfigError(f"learning rate must be positive, got {merged.lr}")
        for name in ("kl_weight", "alpha", "beta", "gamma", "warmup_steps", "decay_steps", "decoder_decay",
                     "encoder_lr_scale"):
            if np.any(np.asarray(getattr(merged, name)) < 0):
                raise ConfigError(f"hyper-parameter {name} must be >= 0, got {getattr(merged, name)}")
        import jax.numpy as jnp
        return cls(*(jnp.asarray(v, jnp.float32) for v in merged))

    def to_json(self) -> dict:
        return {k: np.asarray(v).tolist() for k, v in self._asdict().items()}


# the hyper-parameters that are fractions, with what an error calls them
_UNIT_INTERVAL = {"noise": "noise level", "mix": "mix (the largest partner weight of the mixing augmentation)",
                  "lr_floor": "lr_floor (the final fraction of lr)",
                  "retime": "retime (the largest shift of the re-timing augmentation)"}


def stack(hparams: list[HParams]) -> HParams:
    """Stack HParams along a new leading axis, for `jax.vmap`."""
    import jax
    import jax.numpy as jnp
    return jax.tree.map(lambda *v: jnp.stack(v), *hparams)


FIXED_STEP_SOLVERS = ("euler", "heun")
ADAPTIVE_SOLVERS = ("tsit5", "dopri5")
SYMPLECTIC = "semi_implicit_euler"
SOLVERS = (*FIXED_STEP_SOLVERS, *ADAPTIVE_SOLVERS, SYMPLECTIC)


@dataclasses.dataclass(frozen=True)
class SolverConfig:
    """How the decoder integrates its ODE (jaxphysvae.physics.integrate maps each name to its diffrax solver).

    Attributes:
      name: "euler" (the references' choice), "heun", "tsit5" or "dopri5" (adaptive, PID step-size control), or
        "semi_implicit_euler" (symplectic; separable physics with no in-ODE correction only).
      substeps: solver steps per data step for the fixed-step solvers (the references' `intg_lev`); also the
        initial step of the adaptive solvers is dt / substeps.
      rtol, atol: tolerances of the adaptive solvers.
      max_steps: step budget of the adaptive solvers (past it the solve returns NaN, and training stops with a
        message naming the non-finite loss).
    """

    name: str = "euler"
    substeps: int = 1
    rtol: float = 1e-4
    atol: float = 1e-6
    max_steps: int = 4096

    def __post_init__(self):
        if self.name not in SOLVERS:
            raise ConfigError(f"unknown solver {self.name!r}; expected one of {', '.join(SOLVERS)}")
        for key in ("substeps", "max_steps"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"solver {key} must be a positive integer, got {value!r}")
        if not (self.rtol > 0 and self.atol > 0):
            raise ConfigError(f"solver tolerances must be positive, got rtol={self.rtol}, atol={self.atol}")

    @property
    def adaptive(self) -> bool:
        return self.name in ADAPTIVE_SOLVERS


def _positive_ints(part, names) -> None:
    for name in names:
        value = getattr(part, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which data a run trains on: never part of a compiled program.

    Attributes:
      dataset: a built-in set (pendulum, advdif, locomotion) or the path of your own .npz / .npy file or locomotion
        split directory (jaxphysvae.data.arrays).
      data_seed: the generators' seed; for a file of sequences, the seed of its split.
      n_train, n_valid, n_test: sequences per split: generated sets (None = the reference sizes) and files given as
        one array x (None = 80 / 10 / 10 %).
      data_dt: the time step of a .npy file (a .npz file stores its own as key dt).
    """

    dataset: str = "pendulum"
    data_seed: int = 0
    n_train: int | None = None
    n_valid: int | None = None
    n_test: int | None = None
    data_dt: float | None = None

    def __post_init__(self):
        from jaxphysvae.data import DATASETS  # data and the modules below import jax: not at import time (--help)
        from jaxphysvae.data.arrays import is_path
        if self.dataset not in DATASETS and not is_path(self.dataset):
            raise ConfigError(f"unknown dataset {self.dataset!r}; expected one of {', '.join(DATASETS)}, or the path "
                              f"of a .npz / .npy file of sequences (N, C, T) or of a locomotion split directory")
        if self.data_dt is not None and (self.dataset in DATASETS or not np.isfinite(self.data_dt)
                                         or self.data_dt <= 0):
            raise ConfigError(f"data_dt (the time step of your own data file) must be a positive number and needs a "
                              f"data file as dataset; got data_dt={self.data_dt} with dataset {self.dataset!r}")
        _positive_ints(self, [k for k in ("n_train", "n_valid", "n_test") if getattr(self, k) is not None])


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What a model computes: physics, latents, networks, posteriors, objective and solver (PhysVAE's argument).

    Latent dimensions: -1 removes the component, 0 keeps its network without latent input. Widths are tuples of
    hidden layer sizes.

    Attributes:
      physics: a built-in system (pendulum, diffusion, hamiltonian) or the import path "package.module:Name" of a
        PhysicsModel of your own (jaxphysvae.physics.user).
      use_physics: False sets f_P = 0 (the NN-only and NN + solver baselines).
      flow_phy, flow_aux1, flow_aux2: planar-flow steps K per latent group.
      flow_kl: "exact", or "published_base_kl", which drops the log-determinants (METHOD.md section 4, defect 1).
      flow_margin: keeps w^T u_hat >= -1 + flow_margin in every planar step (0: as published).
      lnvar_min: smooth lower bound of the posterior log-variances (None: unbounded, as published).
      attention_phy, attention_aux1, attention_aux2: attention context per branch ("none", "seq", "batch").
      noise, noise_seq_fraction: the training noise model (its level is hparams.noise).
      ppc: which reconstruction R_ppc regularises ("all", "residual"); learn_x_lnvar: learn the observation noise.
      init: the initialisation of the encoder's and decoder's MLPs and linear heads: "lecun" (flax's default) or
        "torch" (PyTorch nn.Linear's, as the reference implementations; jaxphysvae.nets.initializers).
      init_window: the learned initial-state head (a physics model with learned_initial_state) reads the first
        init_window samples of every channel instead of the whole sequence (None): the state at t = 0 from the start
        of the sequence only, a head with fewer inputs to fit; at most the sequence length.
      init_refine_steps: the encoder's initial state is followed by this many damped Gauss-Newton steps on the
        squared error of x_PAB at the posterior mean (PhysVAE.refine_initial_state; 0: none, as published), in
        training, which differentiates through them, and wherever the model encodes: semi-amortised inference of
        s0, each step costing S + 2 reconstructions (S the state size).
      correction_time: the in-ODE correction f_A also reads the time t (the reference pendulum code's does).
      clip_z_phy: clip samples of z_P to the physical range (True); False keeps them as drawn but for a positive
        z_P, which is kept >= 0 (the reference pendulum code clips omega to [0, 20] only).
      z_phy_space: where z_P's base Gaussian, flows and prior live. "physical" (as published): in the physical
        units, the encoder's mean through softplus for positive physics, samples clipped per clip_z_phy (a flow can
        carry a sample out of the range, where the clip passes no gradient back). "logit": an unconstrained u with
        prior N(0, (pi / sqrt 3)^2) (the variance of the logistic, which the range's uniform pulls back to), decoded
        as z_P = lo + (hi - lo) sigmoid(u), so every sample lies in the range with a gradient; needs a z_range.
      da2_flowed: R_DA2 compares the simulated parameter with the encoder's base mean pushed through z_P's planar
        flow (the z_P the decoder gets from the posterior mean, before any batch attention) instead of the base mean
        (False, as published: the flow is then free to move z_P away from what R_DA2 anchors); the same without a
        z_P flow.
      time_warp: re-time every reconstruction by the last z_A2 unit (0: off, as published): the decoded sequence
        is read at a piecewise-linear map of its samples that keeps both ends and moves the anchor sample by
        time_warp * (T - 1) * tanh(z_A2[-1]) samples (jaxphysvae.timewarp); below min(time_warp_anchor,
        1 - time_warp_anchor), and needs dim_z_aux2 >= 1. For sequences bounded by events at fixed samples, such as
        walking strides between heel strikes: the code's timing in one number.
      time_warp_anchor: the anchor, a fraction of the sequence (0.6: toe-off, near 60 % of a gait cycle).
      aux2_least_squares: z_A2's posterior mean is not the encoder's head but the least-squares fit of the residual
        to what the rest of the decoder leaves of the input, given the posterior means of z_P and z_A1 and the
        initial state (PhysVAE.encode): exact for a linear residual, which it needs (residual_hidden=[]), as
        probabilistic PCA's posterior mean is for its decoder. The z_A2 branch still gives the log-variance and
        feeds the unmixer. Not with a z_A2 flow, a z_A2 attention context, a batch attention context on z_P or
        z_A1, or a time warp (False: as published).
      solver: how the decoder integrates its ODE (SolverConfig).
    """

    physics: str = "pendulum"
    use_physics: bool = True
    dim_z_phy: int = 1
    dim_z_aux1: int = -1
    dim_z_aux2: int = -1
    hamiltonian_hidden: tuple[int, ...] = (128, 128)
    hamiltonian_separable: bool = False
    observation_map: bool = False
    activation: str = "elu"
    feat_hidden: tuple[int, ...] = (128, 128)
    feat_dim: int = 256
    head_hidden: tuple[int, ...] = ()
    unmixer: str = "none"
    unmixer_hidden: tuple[int, ...] = (128, 128)
    correction_hidden: tuple[int, ...] = (64, 64)
    residual_hidden: tuple[int, ...] = (128, 128)
    init_hidden: tuple[int, ...] = (128, 128)
    init_window: int | None = None
    init_refine_steps: int = 0
    flow_phy: int = 0
    flow_aux1: int = 0
    flow_aux2: int = 0
    flow_kl: str = "exact"
    flow_margin: float = 0.0
    lnvar_min: float | None = None
    attention_phy: str = "none"
    attention_aux1: str = "none"
    attention_aux2: str = "none"
    attention_dim: int = 32
    noise: str = "none"
    noise_seq_fraction: float = 0.1
    ppc: str = "all"
    learn_x_lnvar: bool = False
    init: str = "lecun"
    correction_time: bool = False
    clip_z_phy: bool = True
    z_phy_space: str = "physical"
    da2_flowed: bool = False
    time_warp: float = 0.0
    time_warp_anchor: float = 0.6
    aux2_least_squares: bool = False
    solver: SolverConfig = SolverConfig()

    def __post_init__(self):
        from jaxphysvae.attention import CONTEXTS
        from jaxphysvae.nets import INITS, activation_fn
        from jaxphysvae.noise import NOISE
        from jaxphysvae.physics.user import check_spec
        if not isinstance(self.solver, SolverConfig):
            raise ConfigError(f"ModelConfig.solver must be a SolverConfig, got {type(self.solver).__name__} (the "
                              f"flat names solver, substeps, rtol, atol and max_steps set its fields)")
        check_spec(self.physics)
        choices = {"unmixer": UNMIXERS, "ppc": PPC, "flow_kl": FLOW_KL, "attention_phy": CONTEXTS,
                   "attention_aux1": CONTEXTS, "attention_aux2": CONTEXTS, "noise": NOISE, "init": INITS,
                   "z_phy_space": Z_PHY_SPACES}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"unknown {key} {getattr(self, key)!r}; expected one of {', '.join(allowed)}")
        activation_fn(self.activation)
        for key in ("dim_z_aux1", "dim_z_aux2"):
            if getattr(self, key) < -1:
                raise ConfigError(f"{key} must be -1 (removed), 0 or positive, got {getattr(self, key)}")
        if self.dim_z_phy < 0:
            raise ConfigError(f"dim_z_phy must be 0 or positive, got {self.dim_z_phy}")
        _positive_ints(self, ("feat_dim", "attention_dim"))
        for key in ("flow_phy", "flow_aux1", "flow_aux2"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} (number of planar steps) must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.flow_margin < 1.0:
            raise ConfigError(f"flow_margin must lie in [0, 1), got {self.flow_margin}")
        _positive_ints(self, ["init_window"] if self.init_window is not None else [])
        if isinstance(self.init_refine_steps, bool) or not isinstance(self.init_refine_steps, int) \
                or self.init_refine_steps < 0:
            raise ConfigError(f"init_refine_steps must be an integer >= 0, got {self.init_refine_steps!r}")
        if self.lnvar_min is not None and not np.isfinite(self.lnvar_min):
            raise ConfigError(f"lnvar_min must be a finite number or None, got {self.lnvar_min}")
        if not 0.0 <= self.noise_seq_fraction <= 1.0:
            raise ConfigError(f"noise_seq_fraction must lie in [0, 1], got {self.noise_seq_fraction}")
        if not 0.0 < self.time_warp_anchor < 1.0:
            raise ConfigError(f"time_warp_anchor must lie in (0, 1), got {self.time_warp_anchor}")
        if not 0.0 <= self.time_warp < min(self.time_warp_anchor, 1.0 - self.time_warp_anchor):
            raise ConfigError(f"time_warp must lie in [0, {min(self.time_warp_anchor, 1 - self.time_warp_anchor):g}) "
                              f"(below the anchor's distance to either end, or the warp reverses time), got "
                              f"{self.time_warp}")
        if self.time_warp > 0 and self.dim_z_aux2 < 1:
            raise ConfigError(f"time_warp={self.time_warp} re-times by the last z_A2 unit: it needs dim_z_aux2 >= 1, "
                              f"got {self.dim_z_aux2}")
        if self.aux2_least_squares:
            refused = {"a linear residual (residual_hidden=[])": len(self.residual_hidden) > 0,
                       "z_A2 (dim_z_aux2 >= 1)": self.dim_z_aux2 < 1,
                       "no z_A2 flow (flow_aux2=0)": self.flow_aux2 != 0,
                       "no z_A2 attention context (attention_aux2=none)": self.attention_aux2 != "none",
                       "no time warp (time_warp=0)": self.time_warp != 0,
                       "no batch attention context on z_P or z_A1 (the code would depend on the batch)":
                           "batch" in (self.attention_phy, self.attention_aux1)}
            missing = [need for need, failed in refused.items() if failed]
            if missing:
                raise ConfigError(f"aux2_least_squares fits z_A2 to a decoder linear in it: it needs "
                                  f"{', '.join(missing)}")
        if self.unmixer != "none" and not self.use_physics:
            raise ConfigError("an unmixer needs physics (use_physics=True): it cleans the input for the physics "
                              "encoder")

    @property
    def attention(self) -> tuple[str, str, str]:
        """The attention context of the phy, aux1 and aux2 branches."""
        return self.attention_phy, self.attention_aux1, self.attention_aux2


@dataclasses.dataclass(frozen=True)
class OptimisationConfig:
    """How the compiled training step updates the parameters.

    Attributes:
      batch_size: sequences per step (an epoch takes ceil(n_train / batch_size) steps; the last is masked).
      weight_decay: added to the gradient, as PyTorch Adam's weight_decay.
      grad_clip: every gradient value is clipped to [-grad_clip, grad_clip], as the references do.
      grad_clip_norm: also clip the global gradient norm (None: no; stops Adam's rare explosive spikes).
      adam_eps: Adam's epsilon.
      batch_shards: split every training batch into this many equal groups, one per local device (results equal
        the unsplit step's up to float rounding; jaxphysvae.parallel).
    """

    batch_size: int = 200
    weight_decay: float = 1e-6
    grad_clip: float = 5.0
    grad_clip_norm: float | None = None
    adam_eps: float = 1e-3
    batch_shards: int = 1

    def __post_init__(self):
        _positive_ints(self, ("batch_size", "batch_shards"))
        if self.batch_size % self.batch_shards:
            raise ConfigError(f"batch_size {self.batch_size} must be a multiple of batch_shards {self.batch_shards}")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise ConfigError(f"grad_clip_norm must be positive or None, got {self.grad_clip_norm}")
        if self.weight_decay < 0 or self.grad_clip <= 0 or self.adam_eps <= 0:
            raise ConfigError("weight_decay must be >= 0, grad_clip and adam_eps > 0")


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """How long a run trains, how it evaluates and recovers: host-side choices, never compiled.

    Attributes:
      epochs: training epochs (a resume may raise it).
      eval_every: validate every this many epochs; eval_batch_size: sequences per evaluation call.
      rollbacks, rollback_lr_factor: an epoch whose loss or gradient turns non-finite is undone; training goes on
        from the state of the best validation epoch (parameters and optimiser state) with the learning rate scaled
        by rollback_lr_factor, at most `rollbacks` times per run or sweep member (0: stop as diverged). Each
        rollback is a row of metrics.jsonl.
    """

    epochs: int = 5000
    eval_every: int = 1
    eval_batch_size: int = 500
    rollbacks: int = 3
    rollback_lr_factor: float = 0.5

    def __post_init__(self):
        _positive_ints(self, ("epochs", "eval_every", "eval_batch_size"))
        if isinstance(self.rollbacks, bool) or not isinstance(self.rollbacks, int) or self.rollbacks < 0:
            raise ConfigError(f"rollbacks must be an integer >= 0 (0: no rollback), got {self.rollbacks!r}")
        if not 0.0 < self.rollback_lr_factor <= 1.0:
            raise ConfigError(f"rollback_lr_factor must lie in (0, 1], got {self.rollback_lr_factor}")


PARTS = {"data": DataConfig, "model": ModelConfig, "optimisation": OptimisationConfig, "schedule": ScheduleConfig}
# the flat names of the solver's fields (ModelConfig.solver, a SolverConfig) -> its attributes
SOLVER_FIELDS = {"solver": "name", "substeps": "substeps", "rtol": "rtol", "atol": "atol", "max_steps": "max_steps"}
# Every flat configuration name by part, in order: what `--set`, Config(**flat), replace and config.json use
FIELD_GROUPS = {part: tuple(f.name for f in dataclasses.fields(cls) if (part, f.name) != ("model", "solver"))
                + (tuple(SOLVER_FIELDS) if part == "model" else ()) for part, cls in PARTS.items()}
FIELDS = {name: part for part, names in FIELD_GROUPS.items() for name in names}
# the flat names that never enter a traced function: they choose the data and the schedule of a run
RUN_ONLY = FIELD_GROUPS["data"] + FIELD_GROUPS["schedule"]


@dataclasses.dataclass(frozen=True, init=False)
class Config:
    """Everything static about a model and its training, in four parts that validate themselves: `data`
    (DataConfig), `model` (ModelConfig, with its solver), `optimisation` (OptimisationConfig) and `schedule`
    (ScheduleConfig). Only `model` and `optimisation` enter a compiled program.

        Config(dataset="locomotion", batch_size=100)               # flat names, routed to their parts
        Config(model=ModelConfig(physics="hamiltonian"), schedule=ScheduleConfig(epochs=10))
        config.replace(epochs=20, solver="tsit5")                   # flat names again
        config.model.activation, config.optimisation.batch_size, config.model.solver.name

    The flat names (FIELD_GROUPS) are those of `--set`, of `to_json` and of a run's config.json.
    """

    data: DataConfig
    model: ModelConfig
    optimisation: OptimisationConfig
    schedule: ScheduleConfig

    def __init__(self, data: DataConfig | None = None, model: ModelConfig | None = None,
                 optimisation: OptimisationConfig | None = None, schedule: ScheduleConfig | None = None, **flat):
        given = {"data": data, "model": model, "optimisation": optimisation, "schedule": schedule}
        unknown = sorted(set(flat) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown configuration key(s) {unknown}; known: {', '.join(FIELDS)}")
        for name, part in given.items():
            if part is not None and not isinstance(part, PARTS[name]):
                raise ConfigError(f"Config {name} must be a {PARTS[name].__name__}, got {type(part).__name__}")
            both = sorted(k for k in flat if FIELDS[k] == name) if part is not None else []
            if both:
                raise ConfigError(f"{', '.join(both)} given both flat and in the {name} part; give each value once")
        for name, cls in PARTS.items():
            values = {k: v for k, v in flat.items() if FIELDS[k] == name}
            if name == "model":
                solver = {SOLVER_FIELDS[k]: values.pop(k) for k in list(values) if k in SOLVER_FIELDS}
                values["solver"] = SolverConfig(**solver)
            object.__setattr__(self, name, given[name] if given[name] is not None else cls(**values))
        self.__post_init__()

    def __post_init__(self):
        """The rules that join two parts."""
        if self.optimisation.batch_shards > 1 and "batch" in self.model.attention:
            raise ConfigError("a 'batch' attention context couples every sequence of a batch: its batches cannot be "
                              "split over devices (batch_shards must be 1; the 'seq' context can be split)")

    def to_json(self) -> dict:
        """Every flat name and its value (tuples stay tuples; json.dumps writes them as lists)."""
        out = {}
        for name, part in FIELDS.items():
            holder = getattr(self, part)
            out[name] = getattr(holder.solver, SOLVER_FIELDS[name]) if name in SOLVER_FIELDS and part == "model" \
                else getattr(holder, name)
        return out

    def replace(self, **changes) -> "Config":
        """This configuration with the given flat names changed (ConfigError for an unknown name)."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise ConfigError(f"unknown configuration key(s) {unknown}")
        return Config(**{**self.to_json(), **changes})

    @classmethod
    def from_json(cls, values: dict) -> "Config":
        """The Config of a flat dict (a run's config.json); JSON lists become tuples."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @staticmethod
    def field_type(name: str):
        """The declared type of a flat name (for parsing `--set` values)."""
        if name in SOLVER_FIELDS:
            return typing.get_type_hints(SolverConfig)[SOLVER_FIELDS[name]]
        return typing.get_type_hints(PARTS[FIELDS[name]])[name]


def resumable(values: dict) -> dict:
    """A configuration's fields as JSON values, for comparing a stored run's with the current one: the defaults of
    fields added since the run was stored are filled in, and epochs, which a resume may change, is left out."""
    defaults = json.loads(json.dumps(Config().to_json()))
    return {k: v for k, v in {**defaults, **json.loads(json.dumps(values))}.items() if k != "epochs"}


def check_hparams(config: "Config", hparams: HParams) -> None:
    """The rules that join hyper-parameters (each value of a sweep's stack) to a configuration. Raises ConfigError:
    a re-timing shift (hparams.retime) that could reverse time's order about config's time_warp_anchor."""
    anchor = config.model.time_warp_anchor
    bound = min(anchor, 1.0 - anchor)
    if np.any(np.asarray(hparams.retime) >= bound):
        raise ConfigError(f"retime must lie below {bound:g} (min(time_warp_anchor, 1 - time_warp_anchor) with "
                          f"time_warp_anchor={anchor:g}), got {hparams.retime}")


def resumable_hparams(values: dict) -> dict:
    """A run's or a sweep member's hyper-parameters as JSON values, for comparing a stored one with the current one:
    the defaults of hyper-parameters added since it was stored are filled in (as float32, as they are stored)."""
    defaults = json.loads(json.dumps(HParams.create().to_json()))
    return {**defaults, **json.loads(json.dumps(values))}


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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def apply_overrides(config: Config, hparams: dict, overrides: list[str]) -> tuple[Config, dict]:
    """Apply `key=value` strings to a Config and a dict of hyper-parameter values. `noise` names both the training
    noise model (a configuration choice: `noise=feature`) and its level (a hyper-parameter: `noise=0.1`); a number
    sets the level, a name the model."""
    config_changes = {}
    hparams = dict(hparams)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if key in HParams._fields and key in FIELDS and not _is_number(text):
            config_changes[key] = parse_value(text, Config.field_type(key))
        elif key in HParams._fields:
            try:
                hparams[key] = float(text)
            except ValueError:
                raise ConfigError(f"hyper-parameter {key}: expected a number, got {text!r}") from None
        elif key in FIELDS:
            try:
                config_changes[key] = parse_value(text, Config.field_type(key))
            except ConfigError as e:
                raise ConfigError(f"{key}: {e}") from None
        else:
            raise ConfigError(f"unknown key {key!r} in --set; configuration keys: "
                              f"{', '.join(FIELDS)}; hyper-parameters: "
                              f"{', '.join(HParams._fields)}")
    return config.replace(**config_changes), hparams
