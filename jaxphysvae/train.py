"""The training step, a whole epoch as one compiled scan, and evaluation: pure functions of pytrees.

    model = PhysVAE(config, C, T, dt)
    fns = make_functions(model)                      # jitted once per model
    state = fns.init(key, hparams)
    state, metrics = fns.train_step(state, (x, mask), key, hparams)
    state, metrics = fns.train_epoch(state, x_train, key, hparams)   # all batches of an epoch in one call

`train_step` and `train_epoch` take hyper-parameters as data; `jax.vmap(fns.train_step_raw, in_axes=(0, None, 0, 0))`
trains several models at once (see tests/test_train.py).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxphysvae.config import Config, HParams
from jaxphysvae.model import PhysVAE


class TrainState(NamedTuple):
    """params: the model's parameters; opt_state: the optimiser's state; step: int32 count of steps taken."""

    params: dict
    opt_state: optax.OptState
    step: jax.Array


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """The references' optimiser without its learning rate: clip gradients by value, add L2 weight decay to the
    gradient (PyTorch Adam's weight_decay), Adam scaling with eps. The step multiplies by -hparams.lr."""
    return optax.chain(optax.clip(config.grad_clip), optax.add_decayed_weights(config.weight_decay),
                       optax.scale_by_adam(eps=config.adam_eps))


class Functions(NamedTuple):
    """The compiled functions of one model (see the module docstring)."""

    init: Callable
    train_step: Callable
    train_step_raw: Callable
    train_epoch: Callable
    evaluate_batch: Callable


def make_functions(model: PhysVAE) -> Functions:
    config = model.config
    optimizer = make_optimizer(config)
    batch_size = config.batch_size

    def init(key, hparams: HParams) -> TrainState:
        params = model.init(key, hparams)
        return TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))

    def train_step(state: TrainState, batch, key, hparams: HParams):
        """One optimisation step on batch = (x (B, C, T), mask (B,)); returns (new state, metrics)."""
        x, mask = batch
        (_, metrics), grads = jax.value_and_grad(model.loss, has_aux=True)(state.params, x, mask, key, hparams)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: -hparams.lr * u, updates)
        params = optax.apply_updates(state.params, updates)
        metrics["grad_norm"] = optax.global_norm(grads)
        return TrainState(params, opt_state, state.step + 1), metrics

    def train_epoch(state: TrainState, x_train, key, hparams: HParams):
        """All full batches of a shuffled epoch of x_train (N, C, T); the N mod B remainder is left out (a new
        permutation each epoch reaches it). Returns the new state and the metrics averaged over the epoch."""
        n = x_train.shape[0]
        k_perm, k_steps = jax.random.split(key)
        count = n // batch_size
        order = jax.random.permutation(k_perm, n)[: count * batch_size].reshape(count, batch_size)
        step_keys = jax.random.split(k_steps, count)
        mask = jnp.ones(batch_size, bool)

        def body(s, inputs):
            index, k = inputs
            return train_step(s, (x_train[index], mask), k, hparams)

        state, metrics = jax.lax.scan(body, state, (order, step_keys))
        return state, jax.tree.map(jnp.mean, metrics)

    def evaluate_batch(params, x, index, key, hparams: HParams, samples: int):
        """Per-sequence errors of a batch x (B, C, T) whose sequences sit at `index` (B,) in their data set.

        With samples = 0 the decoder uses the posterior mean; with S > 0 it averages the reconstructions of S
        posterior samples, drawn with keys folded from `key` and each sequence's index, so that results never
        depend on batching. Returns abs_err and sq_err of x_PAB and sq_err_P of x_P, each summed per sequence
        (B,), and z_phy (B, d_P), the posterior mean of the physics parameters.
        """
        post = model.encode(params, x)
        if samples == 0:
            rec = model.decode(params, model.posterior_mean(post), post.s0)
            x_hat, x_p = rec.x_PAB, rec.x_P
        else:
            def one(k):
                keys = jax.vmap(lambda i: jax.random.fold_in(k, i))(index)
                z = jax.vmap(lambda p, kk: model.sample(p, kk))(
                    jax.tree.map(lambda a: a[:, None], post), keys)
                z = jax.tree.map(lambda a: a[:, 0], z)
                rec = model.decode(params, z, post.s0)
                return rec.x_PAB, rec.x_P

            x_hats, x_ps = jax.lax.map(one, jax.random.split(key, samples))
            x_hat, x_p = x_hats.mean(0), x_ps.mean(0)
        return {"abs_err": jnp.sum(jnp.abs(x_hat - x), axis=(1, 2)),
                "sq_err": jnp.sum((x_hat - x) ** 2, axis=(1, 2)),
                "sq_err_P": jnp.sum((x_p - x) ** 2, axis=(1, 2)),
                "z_phy": model.posterior_mean(post).phy}

    return Functions(init=jax.jit(init), train_step=jax.jit(train_step), train_step_raw=train_step,
                     train_epoch=jax.jit(train_epoch),
                     evaluate_batch=jax.jit(evaluate_batch, static_argnames="samples"))


def evaluate(fns: Functions, params, dataset, hparams: HParams, batch_size: int, samples: int = 0,
             key: jax.Array | None = None) -> dict:
    """Reconstruction metrics of a whole Dataset, independent of batch size and order.

    Returns mae and rmse (per value, in the data's units), sse_per_seq (squared error summed over channels and
    time, averaged over sequences) of x_hat = x_PAB, the same three for x_P (suffix _P), and for each true physics
    parameter the model estimates, the mean absolute and relative error of the posterior mean.
    """
    from jaxphysvae.data import batches
    key = jax.random.key(0) if key is None else key
    n, c, t = dataset.x.shape
    batch_size = min(batch_size, n)
    parts = {"abs_err": [], "sq_err": [], "sq_err_P": [], "z_phy": []}
    for b in batches(dataset.x, batch_size, remainder="pad"):
        out = fns.evaluate_batch(params, jnp.asarray(b.x), jnp.asarray(b.index), key, hparams, samples)
        for k in parts:
            parts[k].append(np.asarray(out[k])[b.mask])
    per = {k: np.concatenate(v) for k, v in parts.items()}
    metrics = {"mae": float(per["abs_err"].sum() / (n * c * t)),
               "rmse": float(np.sqrt(per["sq_err"].sum() / (n * c * t))),
               "sse_per_seq": float(per["sq_err"].mean()),
               "rmse_P": float(np.sqrt(per["sq_err_P"].sum() / (n * c * t))),
               "sse_per_seq_P": float(per["sq_err_P"].mean())}
    return metrics, per


def physics_errors(model: PhysVAE, z_phy: np.ndarray, dataset) -> dict:
    """Errors of the inferred physics parameters against the dataset's true ones, where both exist."""
    out = {}
    if not model.config.use_physics:
        return out
    for j, name in enumerate(model.physics.param_names):
        if name in dataset.params and j < z_phy.shape[1]:
            err = z_phy[:, j] - dataset.params[name]
            out[f"{name}_mae"] = float(np.abs(err).mean())
            out[f"{name}_rel_err"] = float(np.mean(np.abs(err) / np.abs(dataset.params[name])))
    return out
