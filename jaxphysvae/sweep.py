"""Vectorised hyper-parameter sweeps: every member of a grid trained at once by one compiled, vmapped epoch.

    result = sweep(config, {"alpha": 1e-2, ...}, {"alpha": [1e-3, 1e-2, 1e-1], "seed": [0, 1, 2]}, "runs/sweep")

Members share the architecture (Config) and the data; they differ in hyper-parameters and seed, which are stacked
along a leading member axis of the parameters, optimiser states, keys and HParams. The member axis is sharded over
all local devices (jax.sharding), so the same code runs on one CPU, several host devices, GPUs or a TPU slice; on
several hosts call `jax.distributed.initialize()` first and the mesh spans every process's devices. A member whose
loss turns non-finite is rolled back to its best-validation state with a lower learning rate (config.schedule.rollbacks
times at most, as `fit` does), then marked diverged and frozen at its last good state while the others go on. Each
member's result equals the same configuration trained alone by `jaxphysvae.fit.fit` (up to float rounding of vmapped
arithmetic, which thousands of epochs can grow into a seed's worth of difference), because member m uses exactly the
keys fit uses for its seed.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import time
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxphysvae import checkpoint, files, interrupt, programs, rundir
from jaxphysvae.config import Config, HParams, check_hparams, resumable, resumable_hparams, stack
from jaxphysvae.files import atomic_path
from jaxphysvae.errors import ConfigError
from jaxphysvae.evaluation import evaluate, physics_errors
from jaxphysvae.parallel import member_mesh
from jaxphysvae.runs import (check_physics, compiled, load_splits, physics_description, rebuild, versions,
                             with_physics)
from jaxphysvae.train import with_parameter_average


CONFIG_FILE = "sweep_config.json"  # the sweep's configuration, members and data identity
STATE_FILE = "sweep_state.ckpt"  # every member's train state, best parameters and bookkeeping, for resuming
METRICS_FILE = "metrics.jsonl"  # one line per epoch: every member's training metrics and validation error


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


def parse_grid(items) -> dict[str, list]:
    """The grid of `KEY=V1,V2,...` strings (the CLI's --grid): {key: values}, seeds as integers, the rest as floats.

    Raises:
      ConfigError: an item without "=", a value that is not a number, a key given twice.
    """
    grid = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--grid expects key=v1,v2,..., got {item!r}")
        key, values = (part.strip() for part in item.split("=", 1))
        if key in grid:
            raise ConfigError(f"--grid {key}: given twice; list every value in one key=v1,v2,...")
        try:
            grid[key] = [int(v) if key == "seed" else float(v) for v in values.split(",") if v]
        except ValueError:
            raise ConfigError(f"--grid {key}: expected comma-separated numbers, got {values!r}") from None
    return grid


def sweep(config: Config, base_hparams: dict, grid: dict[str, list], out: str | os.PathLike | None = None,
          devices=None, progress: bool = True, splits: dict | None = None, resume: bool = False,
          checkpoint_every: int = 50, checkpoint_seconds: float = 60.0, physics=None,
          preset: str | None = None) -> dict:
    """Train every member of `grid` over `base_hparams` for config.schedule.epochs epochs in one compiled step.

    Args:
      devices: devices to shard the member axis over (default: all); the member count is padded up to a
        multiple of their number with frozen copies that are left out of the results.
      out: directory for sweep.json, sweep.md (one row per member: configuration, best epoch, valid and test
        metrics, status), best_members.ckpt (every member's best-validation parameters, stacked), metrics.jsonl
        (one JSON line per epoch: "epoch", each training metric as a list over members, "alive", and on evaluated
        epochs "valid_sse_per_seq"; null for a non-finite value; "rolled_back": the members rolled back), and, while the
        sweep runs, sweep_config.json and sweep_state.ckpt (every member's state, for `resume`). It is checked and
        locked for this process before anything is compiled; a directory that already holds a sweep is refused
        unless `resume`. None: keep nothing on disk.
      resume: continue the sweep in `out` from sweep_state.ckpt (same configuration, grid and data;
        config.schedule.epochs may grow).
      checkpoint_every, checkpoint_seconds: sweep_state.ckpt is written after the first epoch, every
        `checkpoint_every` epochs, whenever `checkpoint_seconds` have passed, and on a stop.
      physics: a PhysicsModel object instead of the one config.model.physics names (as in `jaxphysvae.fit.fit`); its
        description is recorded and checked on resume.
      preset: the name of the preset the configuration came from, recorded in sweep.json.

    Returns:
      {"members": [...rows...], "seconds": ..., "devices": ...}.

    Raises:
      jaxphysvae.interrupt.Interrupted: after SIGINT or SIGTERM, once every member's state is saved.
    """
    if config.optimisation.batch_shards != 1:
        raise ConfigError(f"a sweep shards its members over the devices, not batches: set batch_shards=1 "
                          f"(got {config.optimisation.batch_shards})")
    rundir.check_checkpoint_schedule(checkpoint_every, checkpoint_seconds)
    config = with_physics(config, physics)
    members = grid_members(base_hparams, grid)
    for m in members:
        rundir.check_seed(m["seed"])
        check_hparams(config, HParams.create(**{k: v for k, v in m.items() if k != "seed"}))
    if out is None:
        if resume:
            raise ConfigError("resume needs the sweep's directory (out)")
        return _sweep(config, members, None, devices, progress, splits, False, checkpoint_every,
                      checkpoint_seconds, physics, preset)
    out = rundir.prepare(out, "sweep directory")
    with rundir.RunLock(out):
        return _sweep(config, members, out, devices, progress, splits, resume, checkpoint_every, checkpoint_seconds,
                      physics, preset)


def _sweep(config, members, out, devices, progress, splits, resume, checkpoint_every, checkpoint_seconds, physics,
           preset):
    splits = load_splits(config) if splits is None else splits
    model, fns = compiled(config, splits, physics)
    record = json.loads(json.dumps({"config": config.to_json(), "members": members,
                                    "data": rundir.data_identity(splits), "physics": physics_description(model)}))
    if out is not None:
        _check_sweep_directory(out, record, resume, model)
    mesh = member_mesh(devices)
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

    members_fns = _member_functions(model, fns)
    state = members_fns.init(run_keys, hparams)
    best_state = state
    best_sse = np.full(len(padded), np.inf)
    best_epoch = np.zeros(len(padded), int)
    diverged_at = np.zeros(len(padded), int)
    lr_scale = np.ones(len(padded), np.float32)
    rollbacks: list[list[dict]] = [[] for _ in padded]
    start, seconds_before = 0, 0.0
    state_path = None if out is None else out / STATE_FILE
    if resume and state_path.is_file():
        template = {"state": state, "best_state": best_state, "alive": alive}
        template = jax.tree.map(lambda a: a[:count], template)
        tree, meta = checkpoint.load(state_path, template, with_parameter_average)
        pad = lambda a: np.concatenate([a, np.repeat(a[-1:], len(padded) - count, axis=0)])
        tree = jax.tree.map(lambda a: put(pad(np.asarray(a))), tree)
        state, best_state = tree["state"], tree["best_state"]
        alive = put(jnp.asarray(np.asarray(tree["alive"])) & (jnp.arange(len(padded)) < count))
        start, seconds_before = int(meta["epoch"]), float(meta["seconds"])
        lr_scale = pad(np.asarray(meta["lr_scale"], np.float32))
        rollbacks = [list(r) for r in meta["rollbacks"]]
        rollbacks += [[] for _ in range(len(padded) - count)]
        best_sse, best_epoch, diverged_at = (pad(np.asarray(meta[k], float if k == "best_sse" else int))
                                             for k in ("best_sse", "best_epoch", "diverged_at"))
        if config.schedule.epochs < start:
            raise ConfigError(f"{out}: this sweep has trained {start} epochs; --epochs {config.schedule.epochs} would "
                              f"end it before that")
    log_path = None if out is None else out / METRICS_FILE
    if out is not None:
        files.write_json(out / CONFIG_FILE, {**record, "versions": versions()})
        logged, dropped = rundir.read_metrics(log_path)
        kept = [r for r in logged if r["epoch"] <= start]  # epochs past the checkpoint are trained again
        if dropped or len(kept) != len(logged):
            rundir.rewrite_metrics(log_path, kept)
    x_train = jax.device_put(jnp.asarray(splits["train"].x), replicated)
    evaluate_members = members_fns.evaluate
    done, saved = start, {"epoch": start, "time": time.monotonic()}
    run_hparams = hparams._replace(lr=put(jnp.asarray(lr_scale) * hparams.lr))
    t_start = time.perf_counter()

    def save_state():
        if state_path is None:
            return
        tree = jax.tree.map(lambda a: np.asarray(a)[:count], {"state": state, "best_state": best_state,
                                                              "alive": alive})
        meta = {"epoch": done, "seconds": seconds_before + time.perf_counter() - t_start,
                "best_sse": best_sse[:count].tolist(), "best_epoch": best_epoch[:count].tolist(),
                "diverged_at": diverged_at[:count].tolist(), "lr_scale": lr_scale[:count].tolist(),
                "rollbacks": rollbacks[:count]}
        checkpoint.save(state_path, tree, meta)
        saved.update(epoch=done, time=time.monotonic())

    epochs = range(start + 1, config.schedule.epochs + 1)
    if progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, unit="epoch", initial=start, total=config.schedule.epochs,
                      desc=f"sweep of {count} members on {n_dev} device(s)")
    with interrupt.stop_requests("every member's state") as stop, \
            (open(log_path, "a") if log_path else contextlib.nullcontext()) as log:
        try:
            for e in epochs:
                if stop:
                    break
                new_state, now_alive, metrics = members_fns.epoch(state, alive, x_train, run_keys, run_hparams,
                                                                  jnp.int32(e))
                died = np.asarray(alive) & ~np.asarray(now_alive)
                state, alive = new_state, now_alive
                retry = died & (np.array([len(r) for r in rollbacks]) < config.schedule.rollbacks)
                if retry.any():
                    state = _select(retry, best_state, state)
                    alive = put(jnp.asarray(np.asarray(alive) | retry))
                    lr_scale = np.where(retry, lr_scale * np.float32(config.schedule.rollback_lr_factor), lr_scale)
                    run_hparams = hparams._replace(lr=put(jnp.asarray(lr_scale) * hparams.lr))
                    for m in np.flatnonzero(retry):
                        rollbacks[m].append({"epoch": e, "to_epoch": int(best_epoch[m]),
                                             "lr_scale": float(lr_scale[m])})
                diverged_at[died & ~retry] = e
                row = {"epoch": e, **{k: _values(v, count) for k, v in metrics.items()},
                       "alive": np.asarray(alive)[:count].tolist()}
                if retry.any():
                    row["rolled_back"] = np.flatnonzero(retry[:count]).tolist()
                if e % config.schedule.eval_every == 0 or e == config.schedule.epochs:
                    valid = evaluate_members(state.ema_params, splits["valid"], hparams,
                                             config.schedule.eval_batch_size)
                    improved = (valid["sse_per_seq"] < best_sse) & np.asarray(alive)
                    best_sse = np.where(improved, valid["sse_per_seq"], best_sse)
                    best_epoch[improved] = e
                    best_state = _select(improved, state, best_state)
                    row["valid_sse_per_seq"] = _values(valid["sse_per_seq"], count)
                if log is not None:
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                done = e
                if progress:
                    loss = np.asarray(metrics["loss"])[:count]
                    finite = loss[np.isfinite(loss)]
                    epochs.set_postfix(alive=int(np.asarray(alive)[:count].sum()),
                                       best_valid=f"{float(np.min(best_sse[:count])):.4g}",
                                       median_loss=f"{np.median(finite):.4g}" if finite.size else "nan")
                if (e % checkpoint_every == 0 or e == start + 1
                        or time.monotonic() - saved["time"] >= checkpoint_seconds):
                    save_state()
        finally:
            if saved["epoch"] != done or (state_path is not None and not state_path.is_file()):
                save_state()
            if hasattr(epochs, "close"):
                epochs.close()
        if stop and done < config.schedule.epochs:  # a signal during the last epoch stops nothing
            message = (f"sweep stopped by {stop.name} after epoch {done}; " +
                       ("no directory was given, so nothing is saved" if out is None else
                        f"every member's state is saved in {out}: {interrupt.RESUME_HINT}"))
            raise interrupt.Interrupted(stop.signum, message)  # its front end prints the message
    seconds = seconds_before + time.perf_counter() - t_start
    valid = evaluate_members(best_state.ema_params, splits["valid"], hparams, config.schedule.eval_batch_size)
    test = evaluate_members(best_state.ema_params, splits["test"], hparams, config.schedule.eval_batch_size)
    rows = []
    for m in range(count):
        rows.append({**members[m], "status": "diverged" if diverged_at[m] else "completed",
                     "diverged_at_epoch": int(diverged_at[m]) or None, "best_epoch": int(best_epoch[m]),
                     "rollbacks": rollbacks[m], "lr_scale": float(lr_scale[m]),
                     "valid": {k: float(v[m]) for k, v in valid.items()},
                     "test": {k: float(v[m]) for k, v in test.items()}})
    result = {"preset": preset, "members": rows, "seconds": seconds, "epochs": config.schedule.epochs, "devices": n_dev,
              "config": config.to_json(), "data": record["data"], "physics": record["physics"],
              "versions": versions()}
    if out is not None:
        _write(out, result, jax.tree.map(lambda a: a[:count], best_state.ema_params))
    return result


def load_member(out: str | os.PathLike, member: int, physics=None, other_data: bool = False,
                splits: dict | None = None):
    """(config, hparams, model, functions, best params, splits, row) of member `member` (its row in sweep.json) of a
    finished sweep in `out`, as `jaxphysvae.fit.load_run` gives them for a run: the data are loaded as the sweep's
    configuration says and must be those it was trained on (unless `other_data`), the physics must match its
    recorded description, and the parameters are the member's best-validation ones (best_members.ckpt). `splits`:
    the datasets to use instead (those the sweep was given in memory)."""
    out = Path(out)
    require_finished(out)
    result = files.read_json(out / "sweep.json", "sweep results (sweep.json)")
    try:
        config = Config.from_json(result["config"])
        row = result["members"][member]
    except (KeyError, TypeError) as e:
        raise ConfigError(f"{out / 'sweep.json'}: not a sweep's results ({type(e).__name__}: {e})") from None
    except IndexError:
        raise ConfigError(f"{out}: no member {member}; the sweep has {len(result['members'])} (0 to "
                          f"{len(result['members']) - 1})") from None
    hparams = HParams.create(**{k: row[k] for k in HParams._fields if k in row})
    splits, model, fns, template = rebuild(out, result, config, hparams, physics, splits, other_data, "sweep")
    count = len(result["members"])
    stacked, _ = checkpoint.load(out / "best_members.ckpt",
                                 jax.tree.map(lambda a: np.zeros((count,) + np.shape(a), np.asarray(a).dtype),
                                              template))
    return config, hparams, model, fns, jax.tree.map(lambda a: jnp.asarray(a[member]), stacked), splits, row


def require_finished(out: str | os.PathLike) -> None:
    """Refuse a sweep that was stopped before its end (its configuration and state saved, no sweep.json yet) by name,
    with the way to finish it."""
    out = Path(out)
    if (out / CONFIG_FILE).is_file() and not (out / "sweep.json").is_file():
        raise ConfigError(f"{out} is an unfinished sweep (no sweep.json yet, its state is in {STATE_FILE}): "
                          f"finish it with --resume before loading its members")


def parse_member(path: str | os.PathLike) -> tuple[Path, int | None]:
    """(sweep directory, member index) of "SWEEP_DIR:M" where SWEEP_DIR holds a sweep, finished (sweep.json) or not
    (sweep_config.json); (path, None) otherwise."""
    directory, _, index = str(path).rpartition(":")
    if directory and index.isdigit() and any((Path(directory) / f).is_file() for f in ("sweep.json", CONFIG_FILE)):
        return Path(directory), int(index)
    return Path(path), None


def load_any(path: str | os.PathLike, physics=None, other_data: bool = False):
    """`load_run(path)` for a run directory, or `load_member(dir, m)` for "SWEEP_DIR:m" (member m of a finished
    sweep); a sweep that has not finished (or a member of one) is refused by name."""
    from jaxphysvae.fit import load_run
    directory, member = parse_member(path)
    if member is not None:
        return load_member(directory, member, physics, other_data)
    require_finished(directory)
    if (directory / "sweep.json").is_file():
        raise ConfigError(f"{path} is a sweep: name one of its members as {path}:M (M = its row in sweep.json, from 0)")
    return load_run(path, other_data, physics)


def _check_sweep_directory(out: Path, record: dict, resume: bool, model) -> None:
    """Refuse a directory that holds another sweep (or any sweep, unless resuming the same one)."""
    holds = [f for f in (CONFIG_FILE, STATE_FILE, "sweep.json") if (out / f).exists()]
    if not resume:
        if holds:
            raise ConfigError(f"{out} already holds a sweep ({', '.join(holds)}); use --resume to continue it or "
                              f"choose another --out")
        return
    if not (out / CONFIG_FILE).is_file():
        raise ConfigError(f"{out}: nothing to resume (no {CONFIG_FILE})")
    stored = files.read_json(out / CONFIG_FILE, f"sweep configuration ({CONFIG_FILE})")
    try:
        members = [[resumable_hparams(m) for m in r["members"]] for r in (stored, record)]
        same = resumable(stored["config"]) == resumable(record["config"]) and members[0] == members[1]
    except (KeyError, TypeError, AttributeError):
        raise ConfigError(f"{out / CONFIG_FILE}: not a sweep configuration") from None
    if not same:
        raise ConfigError(f"{out}: the stored sweep differs from this one; resume with the same preset, --set values "
                          f"and --grid (only --epochs may change), or sweep into a new directory")
    differ = rundir.data_differences(stored.get("data", {}), record["data"])
    if differ:
        raise ConfigError(f"{out}: the data differ from those this sweep was trained on: {'; '.join(differ)}")
    check_physics(out, stored, model)


def _values(array, count: int) -> list:
    """The first `count` values of a per-member array as JSON numbers (None where not finite)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(array, np.float64)[:count]]


def _select(which, new, old):
    """Per member (leading axis): the leaves of `new` where `which` (M,) is True, else those of `old`."""
    which = jnp.asarray(which)
    return jax.tree.map(lambda n, o: jnp.where(which.reshape((-1,) + (1,) * (n.ndim - 1)), n, o), new, old)


class MemberFunctions(NamedTuple):
    """The compiled functions of a sweep over a stack of members (leading member axis on every argument)."""

    init: Callable  # (run key data (M, 2), hparams) -> stacked TrainState, with the keys `fit` uses per seed
    epoch: Callable  # (state, alive (M,), x_train, run key data, hparams, epoch) -> (state, alive, metrics)
    evaluate: Callable  # (stacked params, dataset, hparams, batch size) -> metrics, arrays over members


@functools.lru_cache(maxsize=16)
def _member_functions(model, fns) -> MemberFunctions:
    """Built and jitted once per model's functions, so that a repeated sweep in one process traces nothing again.
    A member whose metrics turn non-finite keeps its last good state and is no longer alive."""

    def init(run_keys, hparams):
        first = lambda k: jax.random.fold_in(jax.random.wrap_key_data(k), 0)  # the key fit uses for the seed
        return jax.vmap(lambda k, h: fns.init_raw(first(k), h))(run_keys, hparams)

    def epoch(state, alive, x_train, run_keys, hparams, e):
        keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.wrap_key_data(k), e))(run_keys)
        new, metrics = jax.vmap(fns.train_epoch_raw, in_axes=(0, None, 0, 0))(state, x_train, keys, hparams)
        finite = jnp.all(jnp.stack([jnp.isfinite(v) for v in jax.tree.leaves(metrics)]), axis=0)
        keep = alive & finite
        return _select(keep, new, state), keep, metrics

    def evaluate_batch(params, x, index, mask, key, hparams):
        one = lambda p, h: fns.evaluate_batch_raw(p, x, index, mask, key, h, 0)
        return jax.vmap(one)(params, hparams)

    # traced programs kept on disk when jaxphysvae.programs is enabled (single-device member stacks only)
    vmapped = programs.cached_jit(evaluate_batch, "sweep_evaluate_batch", fns.identity)
    batch_fn = lambda p, x, i, m, k, h, samples, noise_kind, noise_level: vmapped(p, x, i, m, k, h)

    def evaluate_members(params, dataset, hparams, batch_size):
        """Metrics over members (M,): reconstruction errors and, where the data hold the true values, the
        physics parameters' errors (NAME_mae, NAME_rel_err; jaxphysvae.evaluation.physics_errors)."""
        metrics, per = evaluate(fns, params, dataset, hparams, batch_size, batch_fn=batch_fn)
        errors = [physics_errors(model, z, dataset) for z in per["z_phy"]]
        return {**metrics, **{k: np.array([e[k] for e in errors]) for k in errors[0]}}

    return MemberFunctions(programs.cached_jit(init, "sweep_init", fns.identity),
                           programs.cached_jit(epoch, "sweep_epoch", fns.identity), evaluate_members)


def _write(out: Path, result: dict, best_params) -> None:
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.save(out / "best_members.ckpt", best_params, {"members": len(result["members"])})
    with atomic_path(out / "sweep.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    members = result["members"]  # the columns that vary over the members (and the seed)
    swept = [k for k in members[0] if k == "seed" or (k in HParams._fields and len({m[k] for m in members}) > 1)]
    physics = [k for k in result["members"][0]["test"] if k.endswith("_mae") and k != "mae"]
    columns = ["status", "rollbacks", "best epoch", "valid sse/seq", "test MAE", "test RMSE", "test sse/seq",
               *(f"test {k.replace('_mae', ' MAE')}" for k in physics)]
    lines = ["| " + " | ".join(swept + columns) + " |",
             "|" + "---|" * len(swept + columns)]
    for r in result["members"]:
        cells = [f"{r[k]:g}" for k in swept]
        v, t = r["valid"], r["test"]
        fmt = lambda x: f"{x:.4f}" if math.isfinite(x) else "nan"
        lines.append("| " + " | ".join(cells) + f" | {r['status']} | {len(r['rollbacks'])} | {r['best_epoch']} | "
                     f"{fmt(v['sse_per_seq'])} | {fmt(t['mae'])} | {fmt(t['rmse'])} | {fmt(t['sse_per_seq'])} |"
                     + "".join(f" {fmt(t[k])} |" for k in physics))
    with atomic_path(out / "sweep.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
