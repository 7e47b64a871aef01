"""Training runs: data, model, epochs, validation, best checkpoint, metrics log, resume, clean stops.

A run directory holds config.json (configuration, hyper-parameters, seed, versions), metrics.jsonl (one JSON line
per epoch), last.ckpt (the train state after the last saved epoch, for resuming), best.ckpt (the parameters with the
best validation squared error), best_state.ckpt (the whole train state of that epoch, where a rollback restarts) and
summary.json (best epoch, valid and test metrics, timing, status).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxphysvae import checkpoint, data, files, interrupt, rundir
from jaxphysvae.config import Config, HParams, check_hparams, resumable, resumable_hparams
from jaxphysvae.errors import ConfigError
from jaxphysvae.evaluation import evaluate, physics_errors
from jaxphysvae.runs import (check_physics, compiled, load_splits, physics_description, rebuild, versions,
                             with_physics)
from jaxphysvae.train import with_parameter_average


def fit(config: Config, hparams: HParams, out: str | os.PathLike, seed: int = 0, resume: bool = False,
        progress: bool = True, checkpoint_every: int = 50, checkpoint_seconds: float = 60.0,
        preset: str | None = None, splits: dict | None = None, physics=None) -> dict:
    """Train `config` with `hparams` for config.schedule.epochs epochs, writing the run directory `out`.

    The directory is checked (writable, not a file) and locked for this process before anything is loaded or
    compiled; a second process on the same directory gets a ConfigError. config.json records the configuration,
    the seed, the versions and the identity of every split (source, shape, SHA-256 of the values); a resume on
    other data is refused.

    Args:
      seed: in [0, 2**32 - 1]; seeds the initialisation and every epoch's randomness (epoch e uses
        fold_in(key(seed), e), so a resumed run reproduces an uninterrupted one exactly).
      resume: continue from out/last.ckpt; the stored configuration must match, but for config.schedule.epochs,
        which may grow to extend a run. A directory with a configuration but no checkpoint yet starts again from
        epoch 0.
      checkpoint_every, checkpoint_seconds: last.ckpt and best.ckpt are written after the first epoch, every
        `checkpoint_every` epochs, whenever `checkpoint_seconds` have passed since the last write, and at the end
        (completed, diverged, interrupted or failed), so a SIGKILL loses at most that much work.
      splits: datasets to use instead of loading them as config.data.dataset says (train, valid, test).
      physics: a PhysicsModel object to use instead of the one config.model.physics names. config.json records its
        description (class and plain attributes, jaxphysvae.physics.user.describe) and, where its class can be
        imported (not defined in __main__), config.model.physics becomes the class's import path, so that `eval`,
        `predict` and `--resume` rebuild it by calling the class with no arguments; `load_run` and a resume check
        that the model they rebuild, or are given, matches the description.

    Returns:
      the summary (also in out/summary.json); its "status" is "completed" or "diverged" (a non-finite loss or
      gradient once config.schedule.rollbacks rollbacks are spent; the last good state and the best checkpoint are
      kept),
      "rollbacks" lists each rollback (epoch, the epoch whose state was restored, the learning-rate scale from then
      on, the non-finite metrics) and "lr_scale" is the final scale; "timing" holds this process's seconds for
      loading the data, building the model and its initial state (with checkpoints on a resume), the first epoch
      (which compiles, or reads its program from the caches), the other epochs, validation and the final evaluation,
      and the wall-clock time (Unix seconds) at which the first epoch ended.

    Raises:
      jaxphysvae.interrupt.Interrupted: after SIGINT (Ctrl-C) or SIGTERM, once the checkpoints and the summary
        (status "interrupted") are written; resume with resume=True.
      ConfigError, DataError: bad input, found before any compute.
    """
    seed = rundir.check_seed(seed)
    rundir.check_checkpoint_schedule(checkpoint_every, checkpoint_seconds)
    check_hparams(config, hparams)
    config = with_physics(config, physics)
    out = rundir.prepare(out, "run directory")
    with rundir.RunLock(out):
        return _fit(config, hparams, out, seed, resume, progress, checkpoint_every, checkpoint_seconds, preset,
                    splits, physics)


def _fit(config, hparams, out: Path, seed, resume, progress, checkpoint_every, checkpoint_seconds, preset, splits,
         physics):
    clock = time.perf_counter()
    splits = load_splits(config) if splits is None else splits
    timing = {"data_s": time.perf_counter() - clock}
    identity = rundir.data_identity(splits)
    record = json.loads(json.dumps({"preset": preset, "config": config.to_json(), "hparams": hparams.to_json(),
                                    "seed": seed}))
    has_checkpoint = (out / "last.ckpt").is_file()
    clock = time.perf_counter()
    model, fns = compiled(config, splits, physics)
    timing["build_s"] = time.perf_counter() - clock
    if resume:
        stored = files.read_json(out / "config.json", "run configuration (config.json)")
        _check_same_run(out, stored, record)
        check_physics(out, stored, model)
        differ = rundir.data_differences(stored.get("data", {}), identity)
        if differ:
            raise ConfigError(f"{out}: the data differ from those this run was trained on: {'; '.join(differ)}. "
                              f"Resume with the same data (check ${data.locomotion.LOCOMOTION_DIR_ENV}) or train "
                              f"into a new directory")
    elif has_checkpoint:
        raise ConfigError(f"{out} already holds a run; use --resume to continue it or choose another --out")

    clock = time.perf_counter()
    run_key = jax.random.key(seed)
    state = fns.init(jax.random.fold_in(run_key, 0), hparams)  # epochs use fold_in(run_key, e), e >= 1
    start, best, recovery = 0, {"epoch": 0, "valid_sse": math.inf}, {"lr_scale": 1.0, "rollbacks": []}
    best_state = state
    if resume and has_checkpoint:
        template = state
        state, meta = checkpoint.load(out / "last.ckpt", template, with_parameter_average)
        if (out / "best_state.ckpt").is_file():
            best_state, _ = checkpoint.load(out / "best_state.ckpt", template, with_parameter_average)
        else:  # a run from before rollbacks: its best parameters, with the last optimiser state
            best_params = checkpoint.load(out / "best.ckpt", state.params)[0]
            best_state = state._replace(params=best_params, ema_params=best_params)
        start, best = meta["epoch"], meta["best"]
        recovery = meta.get("recovery", recovery)
        if config.schedule.epochs < start:
            raise ConfigError(f"{out}: this run has trained {start} epochs; --epochs {config.schedule.epochs} would "
                              f"end it before that (give --epochs {start} or more to extend it)")
    elif resume:
        print(f"jaxphysvae: {out} has a configuration but no checkpoint yet: starting from epoch 0")
    rows, dropped = rundir.read_metrics(out / "metrics.jsonl")
    kept = [r for r in rows if r["epoch"] <= start]
    if dropped:
        print(f"jaxphysvae: {out / 'metrics.jsonl'}: dropped {dropped} unreadable line(s) (a partial write)")
    if dropped or len(kept) != len(rows):
        rundir.rewrite_metrics(out / "metrics.jsonl", kept)
    files.write_json(out / "config.json", {**record, "physics": physics_description(model), "versions": versions(),
                                           "data": identity})

    # with batch_shards > 1: state and data on every device once, so that no epoch sees new placements (and
    # compiles again)
    state, best_state = fns.replicate((state, best_state))
    run_hparams = _scaled_lr(hparams, recovery["lr_scale"])
    x_train = fns.replicate(jnp.asarray(splits["train"].x))
    done, saved = start, {"epoch": None, "time": time.monotonic(), "best_epoch": None}
    timing.update(build_s=timing["build_s"] + time.perf_counter() - clock, validation_s=0.0)

    def save_checkpoints():
        meta = {"epoch": done, "best": best, "recovery": recovery}
        if saved["best_epoch"] != best["epoch"] or not (out / "best_state.ckpt").is_file():  # only when it changed
            checkpoint.save(out / "best.ckpt", best_state.ema_params, meta)
            checkpoint.save(out / "best_state.ckpt", best_state, meta)
        checkpoint.save(out / "last.ckpt", state, meta)
        saved.update(epoch=done, time=time.monotonic(), best_epoch=best["epoch"])

    status, message, train_times = "completed", "", []
    bar = _progress(range(start + 1, config.schedule.epochs + 1), progress, config.schedule.epochs, start)
    with interrupt.stop_requests("the run") as stop:
        try:
            with open(out / "metrics.jsonl", "a") as log:
                for epoch in bar:
                    if stop:
                        break
                    t0 = time.perf_counter()
                    new_state, metrics = fns.train_epoch(state, x_train, jax.random.fold_in(run_key, epoch),
                                                         run_hparams)
                    metrics = {k: float(v) for k, v in metrics.items()}
                    train_times.append(time.perf_counter() - t0)
                    if len(train_times) == 1:
                        timing["first_epoch_end_unix"] = time.time()
                    if not all(math.isfinite(v) for v in metrics.values()):
                        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
                        if len(recovery["rollbacks"]) >= config.schedule.rollbacks:
                            status = "diverged"
                            message = (f"training diverged at epoch {epoch} (non-finite {', '.join(bad)}) after "
                                       f"{len(recovery['rollbacks'])} rollback(s); the last good state and the best "
                                       f"checkpoint are kept")
                            break
                        recovery = _rolled_back(recovery, epoch, best["epoch"], bad, config.schedule.rollback_lr_factor)
                        state, done, run_hparams = best_state, epoch, _scaled_lr(hparams, recovery["lr_scale"])
                        event = recovery["rollbacks"][-1]
                        log.write(json.dumps({"epoch": epoch, "rollback": event}) + "\n")
                        log.flush()
                        print(f"jaxphysvae: epoch {epoch}: non-finite {', '.join(bad)}; rolled back to the state of "
                              f"epoch {best['epoch']} with lr x {recovery['lr_scale']:g} (rollback "
                              f"{len(recovery['rollbacks'])} of {config.schedule.rollbacks})")
                        save_checkpoints()
                        continue
                    row = {"epoch": epoch, **{f"train_{k}": v for k, v in metrics.items()},
                           "train_seconds": train_times[-1]}
                    valid = None
                    if epoch % config.schedule.eval_every == 0 or epoch == config.schedule.epochs:
                        t0 = time.perf_counter()
                        valid, _ = evaluate(fns, new_state.ema_params, splits["valid"], hparams,
                                            config.schedule.eval_batch_size)
                        timing["validation_s"] += time.perf_counter() - t0
                        row.update({f"valid_{k}": v for k, v in valid.items()})
                    # commit the epoch only once it is complete, so that a stop never half-applies it
                    state, done = new_state, epoch
                    if valid is not None and valid["sse_per_seq"] < best["valid_sse"]:
                        best = {"epoch": epoch, "valid_sse": valid["sse_per_seq"]}
                        best_state = state
                    log.write(json.dumps(row) + "\n")
                    log.flush()
                    if hasattr(bar, "set_postfix"):
                        bar.set_postfix(loss=f"{metrics['loss']:.4g}", valid_sse=f"{best['valid_sse']:.4g}",
                                        best=best["epoch"])
                    if (epoch % checkpoint_every == 0 or epoch == start + 1
                            or time.monotonic() - saved["time"] >= checkpoint_seconds):
                        save_checkpoints()
            if stop and done < config.schedule.epochs:  # a signal during the last epoch stops nothing
                status = "interrupted"
                message = f"stopped by {stop.name} after epoch {done}; {interrupt.RESUME_HINT}"
        except KeyboardInterrupt:
            status, message = "interrupted", f"interrupted after epoch {done}; {interrupt.RESUME_HINT}"
            raise
        except BaseException as e:
            status, message = "failed", f"failed after epoch {done}: {type(e).__name__}: {e}"
            raise
        finally:
            if saved["epoch"] != done or not (out / "last.ckpt").is_file():
                save_checkpoints()
            if hasattr(bar, "close"):
                bar.close()
            summary = {"status": status, "message": message, "epochs_run": done, "best_epoch": best["epoch"],
                       "rollbacks": recovery["rollbacks"], "lr_scale": recovery["lr_scale"]}
            if status != "failed":
                clock = time.perf_counter()
                summary = _summarise(fns, model, best_state.ema_params, splits, hparams, config, summary,
                                     train_times)
                timing["final_evaluation_s"] = time.perf_counter() - clock
            summary["timing"] = {**timing, "first_epoch_s": train_times[0] if train_times else None,
                                 "other_epochs_s": float(sum(train_times[1:]))}
            files.write_json(out / "summary.json", summary)
            if message:
                print(f"jaxphysvae: {message}")
    if status == "interrupted":
        raise interrupt.Interrupted(stop.signum, message)
    return summary


def _scaled_lr(hparams: HParams, scale: float) -> HParams:
    """`hparams` with lr scaled by `scale`, float32 (the same compiled programs)."""
    return hparams._replace(lr=jnp.asarray(np.float32(scale) * np.asarray(hparams.lr, np.float32)))


def _rolled_back(recovery: dict, epoch: int, to_epoch: int, non_finite: list[str], factor: float) -> dict:
    """The recovery record after a rollback at `epoch` to the state of `to_epoch`: lr_scale times `factor`."""
    scale = recovery["lr_scale"] * factor
    event = {"epoch": epoch, "to_epoch": to_epoch, "lr_scale": scale, "non_finite": non_finite}
    return {"lr_scale": scale, "rollbacks": [*recovery["rollbacks"], event]}


def _check_same_run(out: Path, stored: dict, record: dict) -> None:
    """Refuse to resume with another configuration, hyper-parameters or seed (only epochs may change)."""
    try:
        then = (resumable(stored["config"]), resumable_hparams(stored["hparams"]), stored["seed"])
    except (KeyError, TypeError, AttributeError):
        raise ConfigError(f"{out / 'config.json'}: not a run configuration (config, hparams or seed missing)") from None
    now = (resumable(record["config"]), resumable_hparams(record["hparams"]), record["seed"])
    if then != now:
        raise ConfigError(f"{out}: the stored configuration differs from this one; resume with the same preset, "
                          f"--set values and seed (only --epochs may change), or train into a new directory")


def _summarise(fns, model, params, splits, hparams, config, summary, train_times):
    summary = dict(summary)
    for split in ("valid", "test"):
        metrics, per = evaluate(fns, params, splits[split], hparams, config.schedule.eval_batch_size)
        metrics.update(physics_errors(model, per["z_phy"], splits[split]))
        summary[split] = metrics
    if len(train_times) > 1:
        summary["train_seconds_per_epoch"] = float(np.median(train_times[1:]))  # the first epoch compiles
    summary["protocol"] = ("posterior mean of every latent; errors of x_hat = x_PAB against the clean data; mae and "
                           "rmse per value, sse_per_seq summed over channels and time, mean over sequences")
    return summary


def _progress(epochs, enabled: bool, total: int, start: int):
    if not enabled:
        return epochs
    from tqdm.auto import tqdm
    return tqdm(epochs, total=total, initial=start, unit="epoch", dynamic_ncols=True)


def load_run(out: str | os.PathLike, other_data: bool = False, physics=None, splits: dict | None = None):
    """(config, hparams, model, functions, best params, splits, record) of a run directory.

    The splits are loaded as the run's configuration says (for locomotion, from the current default source), or
    `splits` are used; if their values differ from those recorded at training time, a ConfigError says so, unless
    `other_data` is True (evaluating a trained model on other data on purpose). The physics model is rebuilt from the
    configuration, or `physics` (the object a run was trained with by `fit(..., physics=...)`) is used; either must
    match the description recorded at training time.
    """
    out = Path(out)
    if not out.is_dir() or not (out / "config.json").exists():
        raise ConfigError(f"{out}: not a run directory (no config.json)")
    record = files.read_json(out / "config.json", "run configuration (config.json)")
    try:
        config = Config.from_json(record["config"])
        hparams = HParams.create(**record["hparams"])
    except (KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{out / 'config.json'}: not a run configuration ({type(e).__name__}: {e})") from None
    splits, model, fns, template = rebuild(out, record, config, hparams, physics, splits, other_data)
    params, _ = checkpoint.load(out / "best.ckpt", template)
    return config, hparams, model, fns, params, splits, record
