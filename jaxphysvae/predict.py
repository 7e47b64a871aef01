"""Inference with a trained model: the four reconstructions, every latent group's posterior, the physics parameters
per sequence with their posterior spread, and the physics part decoded with parameters of your choice or over a
longer horizon (counterfactuals, extrapolation).

    config, hparams, model, fns, params, splits, _ = jaxphysvae.fit.load_run("runs/demo")
    out = predict(model, params, splits["test"].x, samples=100)
    out["omega"], out["omega_std"]                     # (N,) posterior mean and standard deviation of omega
    twice = predict(model, params, x, z_phy=2 * out["z_phy_mean"], horizon=400)   # omega doubled, 4x as long

`jaxphysvae predict RUN_DIR` writes the same arrays to a .npz file.
"""

from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp
import numpy as np

from jaxphysvae.data import batches, check_sequences
from jaxphysvae.decoder import GreyBoxDecoder
from jaxphysvae.errors import ConfigError, DataError
from jaxphysvae.latents import GROUPS
from jaxphysvae.model import PhysVAE

_BATCH_FNS: "weakref.WeakKeyDictionary[PhysVAE, dict]" = weakref.WeakKeyDictionary()


def _functions(model: PhysVAE, samples: int, horizon: int | None):
    """The jitted batch function of `model` for `samples` posterior samples and an extrapolation `horizon`, kept
    while the model lives."""
    cache = _BATCH_FNS.setdefault(model, {})
    key = (samples, horizon)
    if key in cache:
        return cache[key]
    long_decoder = None
    if horizon is not None:
        long_decoder = GreyBoxDecoder(model.config, model.layout, model.physics, model.solver,
                                      _time_grid(model, horizon), model.num_channels)

    def batch(params, x, index, mask, key, z_phy, replace_phy):
        post = model.encode(params, x)
        z, _ = model.latents(params, post, None, mask)
        z_used = z._replace(phy=jnp.where(replace_phy, z_phy, z.phy))
        rec = model.decode(params, z_used, post.s0)
        out = {"x_P": rec.x_P, "x_PA": rec.x_PA, "x_PB": rec.x_PB, "x_PAB": rec.x_PAB, "s0": post.s0,
               **{f"z_{g}_mean": v for g, v in zip(GROUPS, z)}}
        if long_decoder is not None:
            out["x_P_long"] = long_decoder.simulate(params, z_used.phy, post.s0)
            out["x_PA_long"] = (long_decoder.trajectories(params, z_used.phy, z_used.aux1, post.s0, True)
                                if model.layout.has_correction else out["x_P_long"])
        if samples:
            per_sequence = lambda k: jax.vmap(lambda i: jax.random.fold_in(k, i))(index)
            draws = jax.lax.map(lambda k: model.latents(params, post, per_sequence(k), mask)[0],
                                jax.random.split(key, samples))
            out.update({f"z_{g}_samples": v for g, v in zip(GROUPS, draws)})
        return out

    cache[key] = jax.jit(batch)
    return cache[key]


def _time_grid(model: PhysVAE, steps: int) -> np.ndarray:
    """(steps,) float32 times 0, dt, 2 dt, ... on the model's data step."""
    return (np.arange(steps) * model.dt).astype(np.float32)


def _check_count(name: str, value, minimum: int, note: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"predict: {name} must be an integer >= {minimum}{note}, got {value!r}")


def predict(model: PhysVAE, params, x, samples: int = 0, key: jax.Array | None = None, batch_size: int = 500,
            z_phy=None, horizon: int | None = None) -> dict[str, np.ndarray]:
    """What a trained model infers for sequences x (N, C, T), as numpy arrays.

    Args:
      samples: S > 0 also draws S posterior samples of every latent group (reparameterised draws pushed through the
        flows and the attention context, z_P clipped to its range, as in training).
      key: seeds the samples (default key(0)); sequence i's draws depend on i and `key` only, not on the batching.
      batch_size: sequences per compiled call. A model with a "batch" attention context depends on its batch: its
        results hold for batches of this size, in this order.
      z_phy: (N, d_P) physics parameters to decode with instead of the inferred ones (counterfactuals); not clipped
        to the physics' range. The other latents stay at their posterior mean.
      horizon: also integrate the ODE part for this many time steps (T' >= T, on the data's step dt) from the same
        initial states: x_P_long and x_PA_long. The residual network's output has the training length T, so x_PB
        and x_PAB cannot be extended.

    Returns:
      x_P, x_PA, x_PB, x_PAB (N, C, T): physics only, + in-ODE correction, + residual, + both, decoded from the
        posterior mean of every latent (or from z_phy); s0 (N, S): the initial states; t (T,): the time grid;
        z_phy_mean, z_aux1_mean, z_aux2_mean (N, d): the posterior means (the base mean pushed through the flows);
        for each named physics parameter NAME of the model (e.g. omega): NAME (N,), its posterior mean;
        with samples: z_GROUP_samples (S, N, d), z_GROUP_std (N, d), NAME_std (N,) the posterior standard deviation;
        with horizon: x_P_long, x_PA_long (N, C, T') and t_long (T',).

    Raises:
      DataError: x of the wrong shape, or with NaN / Inf; ConfigError: bad samples, batch size, z_phy or horizon.
    """
    x = check_sequences(x, "predict: x", channels=model.num_channels, length=model.num_steps)
    n = x.shape[0]
    _check_count("samples", samples, 0)
    _check_count("batch_size", batch_size, 1)
    if horizon is not None:
        _check_count("horizon", horizon, model.num_steps, " (time steps, at least the data's length)")
    d_phy = model.layout.dims.phy
    replace = z_phy is not None
    if replace:
        z_phy = np.asarray(z_phy, np.float32)
        if z_phy.shape != (n, d_phy):
            raise ConfigError(f"predict: z_phy must have shape ({n}, {d_phy}), one row per sequence; got "
                              f"{z_phy.shape}")
        if not np.all(np.isfinite(z_phy)):
            raise DataError("predict: z_phy holds NaN or Inf values")
    else:
        z_phy = np.zeros((n, d_phy), np.float32)
    key = jax.random.key(0) if key is None else key
    fn = _functions(model, int(samples), None if horizon is None else int(horizon))
    parts = []
    for b in batches(x, min(batch_size, n), remainder="pad"):
        out = fn(params, jnp.asarray(b.x), jnp.asarray(b.index), jnp.asarray(b.mask), key,
                 jnp.asarray(z_phy[b.index]), jnp.asarray(replace))
        out = jax.device_get(out)
        parts.append({k: np.compress(b.mask, v, axis=1 if k.endswith("_samples") else 0) for k, v in out.items()})
    result = {k: np.concatenate([p[k] for p in parts], axis=1 if k.endswith("_samples") else 0) for k in parts[0]}
    result["t"] = model.t
    if horizon is not None:
        result["t_long"] = _time_grid(model, horizon)
    for g in GROUPS:
        if samples:
            result[f"z_{g}_std"] = result[f"z_{g}_samples"].std(axis=0)
    if model.config.use_physics:
        for j, name in enumerate(model.physics.param_names[:d_phy]):
            result[name] = result["z_phy_mean"][:, j]
            if samples:
                result[f"{name}_std"] = result["z_phy_std"][:, j]
    return result

