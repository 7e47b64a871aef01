"""Vectorised hyper-parameter sweeps: every member of a grid trained at once by one compiled, vmapped epoch.

    result = sweep(config, {"alpha": 1e-2, ...}, {"alpha": [1e-3, 1e-2, 1e-1], "seed": [0, 1, 2]}, "runs/sweep")

Members share the architecture (Config) and the data; they differ in hyper-parameters and seed, which are stacked
along a leading member axis of the parameters, optimiser states, keys and HParams. The member axis is sharded over
all local devices (jax.sharding), so the same code runs on one CPU, several host devices, GPUs or a TPU slice; on
several hosts call `jax.distributed.initialize()` first and the mesh spans every process's devices. A member whose
loss turns non-finite is marked diverged and frozen at its last good state while the others go on. Each member's
result equals the same configuration trained alone by `jaxphysvae.fit.fit` (up to float rounding of vmapped
arithmetic), because member m uses exactly the keys fit uses for its seed.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxphysvae import checkpoint
from jaxphysvae.config import Config, HParams, stack
from jaxphysvae.data.cache import atomic_path
from jaxphysvae.errors import ConfigError
from jaxphysvae.fit import compiled, load_splits, versions
from jaxphysvae.train import evaluate


def grid_members(base: dict, grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values over the base hyper-parameters; 'seed' is a grid key too."""
    for key, values in grid.items():
        if key != "seed" and key not in HParams._fields:
            raise ConfigError(f"cannot sweep {key!r}: a sweep varies hyper-parameters ({', '.join(HParams._fields)})"
                              f" and seed; architecture keys need separate runs")
        if not values:
            raise ConfigError(f"grid {key!r} has no values")
    keys = list(grid)
    return [{**base, "seed": 0, **dict(zip(keys, combo))} for combo in itertools.product(*(grid[k] for k in keys))]


def _mesh(devices=None) -> Mesh:
    devices = np.asarray(jax.devices() if devices is None else devices)
    return Mesh(devices, ("members",))


def sweep(config: Config, base_hparams: dict, grid: dict[str, list], out: str | os.PathLike | None = None,
          devices=None, progress: bool = True, splits: dict | None = None) -> dict:
    """Train every member of `grid` over `base_hparams` for config.epochs epochs in one compiled step.

    Args:
      devices: devices to shard the member axis over (default: all); the member count is padded up to a
        multiple of their number with frozen copies that are left out of the results.
      out: directory for sweep.json, sweep.md (one row per member: configuration, best epoch, valid and test
        metrics, status) and best_members.ckpt (every member's best-validation parameters, stacked).

    Returns:
      {"members": [...rows...], "seconds": ..., "devices": ...}.
    """
    if config.batch_shards != 1:
        raise ConfigError(f"a sweep shards its members over the devices, not batches: set batch_shards=1 "
                          f"(got {config.batch_shards})")
    members = grid_members(base_hparams, grid)
    splits = load_splits(config) if splits is None else splits
    model, fns = compiled(config, splits)
    mesh = _mesh(devices)
    n_dev = mesh.devices.size
    count = len(members)
    padded = members + [members[-1]] * (-count % n_dev)
    shard = NamedSharding(mesh, PartitionSpec("members"))
    replicated = NamedSharding(mesh, PartitionSpec())
    put = lambda tree: jax.device_put(tree, shard)

    hparams = put(stack([HParams.create(**{k: v for k, v in m.items() if k != "seed"}) for m in padded]))
    seeds = [int(m["seed"]) for m in padded]
    run_keys = put(jnp.stack([jax.random.key_data(jax.random.key(s)) for s in seeds]))
    alive = put(jnp.arange(len(padded)) < count)

    state = jax.jit(jax.vmap(lambda k, h: _init(fns, k, h)))(run_keys, hparams)
    x_train = jax.device_put(jnp.asarray(splits["train"].x), replicated)

    @jax.jit
    def epoch(state, alive, run_keys, hparams, e):
        keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.wrap_key_data(k), e))(run_keys)
        new, metrics = jax.vmap(fns.train_epoch_raw, in_axes=(0, None, 0, 0))(state, x_train, keys, hparams)
        finite = jnp.all(jnp.stack([jnp.isfinite(v) for v in jax.tree.leaves(metrics)]), axis=0)
        keep = alive & finite
        return _select(keep, new, state), keep, metrics

    evaluate_members = _member_evaluator(fns)
    best_sse = np.full(len(padded), np.inf)
    best_params = state.params
    best_epoch = np.zeros(len(padded), int)
    diverged_at = np.zeros(len(padded), int)
    start = time.perf_counter()
    epochs = range(1, config.epochs + 1)
    if progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, unit="epoch", desc=f"sweep of {count} members on {n_dev} device(s)")
    for e in epochs:
        state, now_alive, metrics = epoch(state, alive, run_keys, hparams, jnp.int32(e))
        died = np.asarray(alive) & ~np.asarray(now_alive)
        diverged_at[died] = e
        alive = now_alive
        if e % config.eval_every == 0 or e == config.epochs:
            valid = evaluate_members(state.params, splits["valid"], hparams, config.eval_batch_size)
            improved = (valid["sse_per_seq"] < best_sse) & np.asarray(alive)
            best_sse = np.where(improved, valid["sse_per_seq"], best_sse)
            best_epoch[improved] = e
            best_params = _select(improved, state.params, best_params)
        if progress:
            loss = np.asarray(metrics["loss"])[:count]
            epochs.set_postfix(alive=int(np.asarray(alive)[:count].sum()),
                               best_valid=f"{float(np.min(best_sse[:count])):.4g}",
                               median_loss=f"{float(np.nanmedian(np.where(np.isfinite(loss), loss, np.nan))):.4g}")
    seconds = time.perf_counter() - start
    valid = evaluate_members(best_params, splits["valid"], hparams, config.eval_batch_size)
    test = evaluate_members(best_params, splits["test"], hparams, config.eval_batch_size)
    rows = []
    for m in range(count):
        rows.append({**members[m], "status": "diverged" if diverged_at[m] else "completed",
                     "diverged_at_epoch": int(diverged_at[m]) or None, "best_epoch": int(best_epoch[m]),
                     "valid": {k: float(v[m]) for k, v in valid.items()},
                     "test": {k: float(v[m]) for k, v in test.items()}})
    result = {"members": rows, "seconds": seconds, "epochs": config.epochs, "devices": n_dev,
              "config": config.to_json(), "versions": versions()}
    if out is not None:
        _write(Path(out), result, jax.tree.map(lambda a: a[:count], best_params))
    return result


def _select(which, new, old):
    """Per member (leading axis): the leaves of `new` where `which` (M,) is True, else those of `old`."""
    which = jnp.asarray(which)
    return jax.tree.map(lambda n, o: jnp.where(which.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)


def _init(fns, key_data, hparams):
    """Member initialisation with the key `fit` uses for the same seed."""
    return fns.init_raw(jax.random.fold_in(jax.random.wrap_key_data(key_data), 0), hparams)


def _member_evaluator(fns):
    """evaluate() over the stacked members: the batch function vmapped over parameters and hyper-parameters."""
    vmapped = jax.jit(jax.vmap(lambda p, x, i, m, k, h: fns.evaluate_batch_raw(p, x, i, m, k, h, 0),
                               in_axes=(0, None, None, None, None, 0)))
    batch_fn = lambda p, x, i, m, k, h, samples, noise_kind, noise_level: vmapped(p, x, i, m, k, h)

    def evaluate_members(params, dataset, hparams, batch_size):
        return evaluate(fns, params, dataset, hparams, batch_size, batch_fn=batch_fn)[0]

    return evaluate_members


def _write(out: Path, result: dict, best_params) -> None:
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.save(out / "best_members.ckpt", best_params, {"members": len(result["members"])})
    with atomic_path(out / "sweep.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    swept = [k for k in result["members"][0] if k in HParams._fields or k == "seed"]
    columns = ["status", "best epoch", "valid sse/seq", "test MAE", "test RMSE", "test sse/seq"]
    lines = ["| " + " | ".join(swept + columns) + " |",
             "|" + "---|" * len(swept + columns)]
    for r in result["members"]:
        cells = [f"{r[k]:g}" for k in swept]
        v, t = r["valid"], r["test"]
        fmt = lambda x: f"{x:.4f}" if math.isfinite(x) else "nan"
        lines.append("| " + " | ".join(cells) + f" | {r['status']} | {r['best_epoch']} | {fmt(v['sse_per_seq'])} | "
                     f"{fmt(t['mae'])} | {fmt(t['rmse'])} | {fmt(t['sse_per_seq'])} |")
    with atomic_path(out / "sweep.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
