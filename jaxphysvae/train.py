"""The compiled functions of a model: initialisation, the training step, a whole epoch as one scan, and a batch's
evaluation, all pure functions of pytrees (whole-data-set evaluation on the host is jaxphysvae.evaluation, also
importable from here as `evaluate` and `physics_errors`).

    model = PhysVAE(config, C, T, dt)
    fns = make_functions(model, config)              # jitted once per model and optimisation
    state = fns.init(key, hparams)
    state, metrics = fns.train_step(state, (x, mask), key, hparams)
    state, metrics = fns.train_epoch(state, x_train, key, hparams)   # all batches of an epoch in one call
    metrics, per_sequence = evaluate(fns, state.ema_params, dataset, hparams, batch_size)  # the parameter average

`train_step` and `train_epoch` take hyper-parameters as data; `jax.vmap(fns.train_step_raw, in_axes=(0, None, 0, 0))`
trains several models at once (jaxphysvae.sweep does this for whole runs). The `*_raw` functions are the un-jitted
pure functions, for composing with vmap, shard_map or a jit of your own.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxphysvae import programs
from jaxphysvae.config import Config, HParams, OptimisationConfig
from jaxphysvae.decoder import DECODER_NETWORKS
from jaxphysvae.evaluation import as_float32, evaluate, physics_errors  # noqa: F401 (documented as train.evaluate)
from jaxphysvae.errors import ConfigError
from jaxphysvae.mixing import mix_sequences
from jaxphysvae.model import Noise, PhysVAE
from jaxphysvae.parallel import batch_mesh, replicated, split_groups
from jaxphysvae.timewarp import retime_sequences


class TrainState(NamedTuple):
    """params: the model's parameters; opt_state: the optimiser's state; step: int32 count of steps taken;
    ema_params: the exponential moving average of params at hparams.ema_decay (`average_parameters`; params itself
    when the decay is 0), the parameters that validation, the best checkpoints and the results use."""

    params: dict
    opt_state: optax.OptState
    step: jax.Array
    ema_params: dict


def with_parameter_average(state_dict: dict) -> dict:
    """A TrainState's state dict (flax.serialization) from before `ema_params` existed, given one: its params as
    the average (what such a state was evaluated with). Other dicts are returned unchanged."""
    if {"params", "opt_state", "step"} <= state_dict.keys() and "ema_params" not in state_dict:
        return {**state_dict, "ema_params": state_dict["params"]}
    return state_dict


def make_optimizer(config: OptimisationConfig) -> optax.GradientTransformation:
    """The references' optimiser without its learning rate: clip gradients by value, add L2 weight decay to the
    gradient (PyTorch Adam's weight_decay), Adam scaling with eps; with config.grad_clip_norm, the global norm is
    clipped first. `apply_gradients` multiplies by the step's -learning_rate."""
    clip_norm = [] if config.grad_clip_norm is None else [optax.clip_by_global_norm(config.grad_clip_norm)]
    return optax.chain(*clip_norm, optax.clip(config.grad_clip), optax.add_decayed_weights(config.weight_decay),
                       optax.scale_by_adam(eps=config.adam_eps))


def learning_rate(step: jax.Array, hparams: HParams) -> jax.Array:
    """The learning rate of optimisation step `step` (0-based): hparams.lr, raised linearly over the first
    hparams.warmup_steps steps (from lr / warmup_steps), then, when hparams.decay_steps > 0, lowered along a half
    cosine to lr * hparams.lr_floor at step warmup_steps + decay_steps and held there. All three are data, so a
    sweep may vary them; with warmup_steps = decay_steps = 0 the rate is constant (the references)."""
    t = jnp.asarray(step, jnp.float32)
    warm = jnp.minimum(1.0, (t + 1.0) / jnp.maximum(hparams.warmup_steps, 1.0))
    progress = jnp.clip((t - hparams.warmup_steps) / jnp.maximum(hparams.decay_steps, 1.0), 0.0, 1.0)
    cosine = hparams.lr_floor + (1.0 - hparams.lr_floor) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
    return hparams.lr * warm * jnp.where(hparams.decay_steps > 0, cosine, 1.0)


def decoder_decay(params: dict, rate) -> dict:
    """The decoupled weight-decay term of the decoder: rate * p for the physics model's parameters and the
    decoder's networks (jaxphysvae.decoder.DECODER_NETWORKS), zeros for every other parameter (encoder, flows,
    attention, a learned x_lnvar). `params` as PhysVAE.init makes them; rate a float32 scalar."""
    zero = lambda tree: jax.tree.map(jnp.zeros_like, tree)
    decay = lambda tree: jax.tree.map(lambda p: rate * p, tree)
    terms = {key: zero(value) for key, value in params.items() if key not in ("nets", "physics")}
    terms["nets"] = {name: decay(net) if name in DECODER_NETWORKS else zero(net)
                     for name, net in params["nets"].items()}
    terms["physics"] = decay(params["physics"])
    return terms


def encoder_lr_scales(params: dict, scale) -> dict:
    """Each parameter's learning-rate multiplier: `scale` for the inference side (every network but the decoder's
    DECODER_NETWORKS: the encoder's, the initial state's, flows, attention), 1 for the generative side (the physics
    model's parameters, the decoder's networks, a learned x_lnvar). `params` as PhysVAE.init makes them; scale a
    float32 scalar. A tree of scalars, one per leaf of `params`."""
    one = jnp.ones((), jnp.float32)
    scales = jax.tree.map(lambda _: one, params)
    scales["nets"] = {name: jax.tree.map(lambda _: one if name in DECODER_NETWORKS else scale, net)
                      for name, net in params["nets"].items()}
    return scales


def average_parameters(average: dict, params: dict, step: jax.Array, decay) -> dict:
    """The exponential moving average after optimisation step `step` (0-based) has produced `params`:
    d_t average + (1 - d_t) params with d_t = min(decay, (1 + step) / (10 + step)), the warm-up keeping the
    average from lingering at the initial parameters. decay = 0 returns params exactly."""
    t = jnp.asarray(step, jnp.float32)
    d = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
    return jax.tree.map(lambda a, p: d * a + (1.0 - d) * p, average, params)


def apply_gradients(optimizer: optax.GradientTransformation, state: "TrainState", grads, hparams: HParams):
    """One update of `state` with `grads` by `optimizer` (see `make_optimizer`) at `learning_rate(state.step)`, the
    inference side's updates scaled by hparams.encoder_lr_scale (`encoder_lr_scales`), plus the decoder's decoupled
    weight decay (`decoder_decay` at hparams.decoder_decay): p <- p - lr (s u + d); the parameter average follows
    (`average_parameters` at hparams.ema_decay).
    Returns (the new TrainState, the learning rate used)."""
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    lr = learning_rate(state.step, hparams)
    decay = decoder_decay(state.params, hparams.decoder_decay)
    scales = encoder_lr_scales(state.params, hparams.encoder_lr_scale)
    params = optax.apply_updates(state.params, jax.tree.map(lambda u, s, d: -lr * (s * u + d), updates, scales, decay))
    average = average_parameters(state.ema_params, params, state.step, hparams.ema_decay)
    return TrainState(params, opt_state, state.step + 1, average), lr


class Functions(NamedTuple):
    """The compiled functions of one model (see the module docstring)."""

    init: Callable
    init_raw: Callable
    train_step: Callable
    train_step_raw: Callable
    train_epoch: Callable
    train_epoch_raw: Callable
    evaluate_batch: Callable
    evaluate_batch_raw: Callable
    replicate: Callable
    identity: str | None = None  # what fixes these functions' programs (jaxphysvae.programs); None: not cacheable


def _float32_hparams(jitted: Callable) -> Callable:
    """Call `jitted(state, data, key, hparams)` with `as_float32(hparams)`. `.jitted` is the plain jit of the
    function, `.cache_size()` the number of programs compiled for it."""

    @functools.wraps(jitted)
    def call(state, data, key, hparams: HParams):
        return jitted(state, data, key, as_float32(hparams))

    call.jitted = getattr(jitted, "jitted", jitted)
    call.cache_size = jitted.cache_size if hasattr(jitted, "cache_size") else jitted._cache_size
    return call


def epoch_batches(key: jax.Array, n: int, batch_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The batches of one training epoch drawn from `key`: every one of the n sequences once, in a random order.

    Returns (indices (count, batch_size), mask (count, batch_size), keys (count,)) with count = ceil(n /
    batch_size): a permutation of range(n) cut into batches, the last one filled up with index 0 where the mask is
    False (a masked row adds nothing to the objective or its gradient), and one key per step. `train_epoch` takes
    its steps in this order with these keys.
    """
    k_perm, k_steps = jax.random.split(key)
    count = -(-n // batch_size)
    pad = count * batch_size - n
    order = jnp.concatenate([jax.random.permutation(k_perm, n), jnp.zeros(pad, jnp.int32)])
    mask = jnp.arange(count * batch_size) < n
    return (order.reshape(count, batch_size), mask.reshape(count, batch_size),
            jax.random.split(k_steps, count))


def make_functions(model: PhysVAE, optimisation: OptimisationConfig | Config, devices=None) -> Functions:
    """The compiled functions of `model`, trained as `optimisation` says (of a whole Config, its `optimisation`
    part is taken).

    With optimisation.batch_shards = D > 1 every training batch is split into D equal groups of sequences; the gradient
    of each group's summed objective is computed in a vmap whose group axis is sharded over D devices (`devices`,
    default the first D local ones), and the groups' mean gradients are combined, weighted by their valid rows (one
    all-reduce per step). Each sequence draws
    its randomness from its own key, so the step equals the unsplit one up to float rounding. `evaluate_batch`
    splits its batch over the devices the same way (`evaluate_batch_raw` stays the one-device function).
    """
    config = optimisation.optimisation if isinstance(optimisation, Config) else optimisation
    if not isinstance(config, OptimisationConfig):
        raise ConfigError(f"make_functions needs an OptimisationConfig (or a Config), got {type(config).__name__}")
    optimizer = make_optimizer(config)
    batch_size = config.batch_size
    shards = config.batch_shards
    mesh = batch_mesh(shards, devices)

    # `tree` on every device of the batch mesh (unchanged without data parallelism): place the training data there
    # once rather than at every call
    replicate = replicated(mesh)

    def init(key, hparams: HParams) -> TrainState:
        params = model.init(key, hparams)
        return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32), params)

    def split(a):
        return split_groups(a, mesh)

    def train_step(state: TrainState, batch, key, hparams: HParams):
        """One optimisation step on batch = (x (B, C, T), mask (B,)) with per-sequence keys split(key, B): the
        gradient of `model.batch_loss` on the batch after the mixing augmentation (jaxphysvae.mixing, at
        hparams.mix; none at 0) and the re-timing augmentation (jaxphysvae.timewarp.retime_sequences, at
        hparams.retime; none at 0), applied by `apply_gradients`. Returns (new state, metrics): batch_loss's
        metrics, "lr" the learning rate of this step, and "grad_norm" the gradient's norm before clipping."""
        x, mask = batch
        keys = jax.random.split(key, x.shape[0])
        x = mix_sequences(x, mask, keys, hparams.mix)
        x = retime_sequences(x, keys, hparams.retime, model.config.time_warp_anchor)
        value_and_grad = jax.value_and_grad(model.batch_loss, has_aux=True)
        if mesh is None:
            (_, metrics), grads = value_and_grad(state.params, x, mask, keys, hparams)
        else:
            # each group's mean weighted by its share of the valid rows: the mean over the whole batch
            per_group = jax.vmap(value_and_grad, in_axes=(None, 0, 0, 0, None))
            (_, metrics), grads = per_group(state.params, split(x), split(mask), split(keys), hparams)
            rows = jnp.sum(split(mask), axis=1).astype(jnp.float32)
            share = rows / jnp.maximum(jnp.sum(rows), 1.0)
            metrics, grads = jax.tree.map(lambda v: jnp.tensordot(share, v, axes=1), (metrics, grads))
        state, lr = apply_gradients(optimizer, state, grads, hparams)
        return state, {**metrics, "lr": lr, "grad_norm": optax.tree.norm(grads)}

    def train_epoch(state: TrainState, x_train, key, hparams: HParams):
        """One shuffled pass over x_train (N, C, T): ceil(N / B) steps, the last on the N mod B remaining sequences
        (masked rows fill it up; see `epoch_batches`). Returns the new state and the metrics averaged over the
        epoch's sequences (grad_norm and x_lnvar over its steps), with "steps" the number of steps taken."""
        order, masks, step_keys = epoch_batches(key, x_train.shape[0], batch_size)

        def body(s, inputs):
            index, mask, k = inputs
            return train_step(s, (x_train[index], mask), k, hparams)

        state, metrics = jax.lax.scan(body, state, (order, masks, step_keys))
        rows = jnp.sum(masks, axis=1).astype(jnp.float32)
        per_step = ("grad_norm", "x_lnvar", "lr")
        epoch = {k: jnp.mean(v) if k in per_step else jnp.sum(v * rows) / jnp.sum(rows) for k, v in metrics.items()}
        epoch["steps"] = jnp.asarray(order.shape[0], jnp.float32)
        return state, epoch

    def evaluate_batch(params, x, index, mask, key, hparams: HParams, samples: int, noise_kind: str = "none",
                       noise_level=0.0):
        """Per-sequence errors of a batch x (B, C, T) whose sequences sit at `index` (B,) in their data set.

        With samples = 0 the decoder uses the posterior mean (for flowed groups the base mean pushed through the
        flow); with S > 0 it averages the reconstructions of S posterior samples. The encoder sees clean data
        unless noise_kind names a noise model (jaxphysvae.noise), applied at noise_level. Random draws use keys
        folded from `key` and each sequence's index, so results never depend on batching (except through a
        "batch" attention context, whose padding rows are masked out by `mask`). Returns abs_err and sq_err of
        x_PAB and sq_err_P of x_P, each summed per sequence (B,), and z_phy (B, d_P), the posterior mean of z_P.
        """
        per_sequence = lambda k: jax.vmap(lambda i: jax.random.fold_in(k, i))(index)
        noise = None
        if noise_kind != "none":
            noise = Noise(noise_kind, jnp.asarray(noise_level, jnp.float32),
                          per_sequence(jax.random.fold_in(key, 1)))
        post = model.encode(params, x, noise)
        z_mean, _ = model.latents(params, post, None, mask)
        if samples == 0:
            rec = model.decode(params, z_mean, post.s0)
            x_hat, x_p = rec.x_PAB, rec.x_P
        else:
            def one(k):
                z, _ = model.latents(params, post, per_sequence(k), mask)
                rec = model.decode(params, z, post.s0)
                return rec.x_PAB, rec.x_P

            x_hats, x_ps = jax.lax.map(one, jax.random.split(jax.random.fold_in(key, 2), samples))
            x_hat, x_p = x_hats.mean(0), x_ps.mean(0)
        return {"abs_err": jnp.sum(jnp.abs(x_hat - x), axis=(1, 2)),
                "sq_err": jnp.sum((x_hat - x) ** 2, axis=(1, 2)),
                "sq_err_P": jnp.sum((x_p - x) ** 2, axis=(1, 2)),
                "z_phy": z_mean.phy}

    def evaluate_split(params, x, index, mask, key, hparams: HParams, samples: int, noise_kind: str = "none",
                       noise_level=0.0):
        """evaluate_batch with the batch padded to a multiple of D and split into D groups, one per device (the
        padding rows are masked and dropped; each sequence's draws depend on its index only)."""
        b = x.shape[0]
        pad = -b % shards
        widen = lambda a, fill: jnp.concatenate([a, jnp.full((pad,) + a.shape[1:], fill, a.dtype)])
        x, index, mask = widen(x, 0), widen(index, 0), widen(mask, False)
        per_group = jax.vmap(evaluate_batch, in_axes=(None, 0, 0, 0, None, None, None, None, None))
        out = per_group(params, split(x), split(index), split(mask), key, hparams, samples, noise_kind, noise_level)
        return jax.tree.map(lambda v: v.reshape((shards * v.shape[1],) + v.shape[2:])[:b], out)

    # init, the epoch and evaluation keep their traced programs on disk when jaxphysvae.programs is enabled
    model_identity = None if mesh is not None else model.identity()
    identity = None if model_identity is None else repr((model_identity, config))
    evaluate_jitted = programs.cached_jit(evaluate_batch if mesh is None else evaluate_split, "evaluate_batch",
                                          identity, static_argnames=("samples", "noise_kind"))
    return Functions(init=programs.cached_jit(init, "init", identity), init_raw=init,
                     train_step=_float32_hparams(jax.jit(train_step)), train_step_raw=train_step,
                     train_epoch=_float32_hparams(programs.cached_jit(train_epoch, "train_epoch", identity)),
                     train_epoch_raw=train_epoch, evaluate_batch=evaluate_jitted, evaluate_batch_raw=evaluate_batch,
                     replicate=replicate, identity=identity)
