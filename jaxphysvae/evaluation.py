"""Evaluation on the host: reconstruction metrics of whole data sets (independent of batch size and order) and the
errors of the inferred physics parameters."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxphysvae.config import HParams


def as_float32(hparams: HParams) -> HParams:
    """HParams as float32 arrays: a Python float (weakly typed) or a float64 value passed to a jitted function
    would compile a second program."""
    return HParams(*(jnp.asarray(v, jnp.float32) for v in hparams))


def evaluate(fns, params, dataset, hparams: HParams, batch_size: int, samples: int = 0,
             key: jax.Array | None = None, noise_kind: str = "none", noise_level: float = 0.0,
             batch_fn: Callable | None = None) -> tuple[dict, dict]:
    """Reconstruction metrics of a whole Dataset, independent of batch size and order (with a "batch" attention
    context they depend on the batch size, which must then be stated with the results).

    The encoder sees clean data unless `noise_kind` is given; the targets are always the clean data.

    Args:
      fns: the model's functions (jaxphysvae.train.Functions); only `fns.evaluate_batch` is used.
      batch_fn: what evaluates one batch, with the signature of `fns.evaluate_batch` (default); a vmapped version
        evaluates a stack of models at once (jaxphysvae.sweep), and the metrics are then arrays over the models.

    Returns:
      (metrics, per_sequence): metrics are mae and rmse (per value, in the data's units) and sse_per_seq (squared
      error summed over channels and time, averaged over sequences) of x_hat = x_PAB, and rmse_P and sse_per_seq_P
      of x_P; per_sequence holds the summed errors of every sequence (..., N) and the posterior mean of z_P
      (..., N, d_P), for `physics_errors`.
    """
    from jaxphysvae.data import batches
    key = jax.random.key(0) if key is None else key
    batch_fn = fns.evaluate_batch if batch_fn is None else batch_fn
    hparams = as_float32(hparams)
    n, c, t = dataset.x.shape
    parts = {"abs_err": [], "sq_err": [], "sq_err_P": [], "z_phy": []}
    for b in batches(dataset.x, min(batch_size, n), remainder="pad"):
        out = batch_fn(params, jnp.asarray(b.x), jnp.asarray(b.index), jnp.asarray(b.mask), key, hparams, samples,
                       noise_kind, jnp.float32(noise_level))
        for k in parts:
            values = np.asarray(out[k])
            parts[k].append(np.compress(b.mask, values, axis=values.ndim - (2 if k == "z_phy" else 1)))
    per = {k: np.concatenate(v, axis=v[0].ndim - (2 if k == "z_phy" else 1)) for k, v in parts.items()}
    values = n * c * t
    metrics = {"mae": per["abs_err"].sum(-1) / values, "rmse": np.sqrt(per["sq_err"].sum(-1) / values),
               "sse_per_seq": per["sq_err"].mean(-1), "rmse_P": np.sqrt(per["sq_err_P"].sum(-1) / values),
               "sse_per_seq_P": per["sq_err_P"].mean(-1)}
    return {k: float(v) if np.ndim(v) == 0 else v for k, v in metrics.items()}, per


def reconstruction_errors(x_hat, x) -> dict:
    """`evaluate`'s reconstruction metrics of any reconstructions x_hat of x, both (N, C, T) in the data's units,
    computed in float64 on the host: mae and rmse per value, sse_per_seq (squared error summed over channels and
    time, averaged over sequences). For reconstructions made outside the model's compiled evaluation (fitted codes,
    baselines)."""
    err = np.asarray(x_hat, np.float64) - np.asarray(x, np.float64)
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
            "sse_per_seq": float((err ** 2).sum(axis=(1, 2)).mean())}


def physics_errors(model, z_phy: np.ndarray, dataset) -> dict:
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
