"""Training runs: data, model, epochs, validation, best checkpoint, metrics log, resume, clean stops.

A run directory holds config.json (configuration, hyper-parameters, seed, versions), metrics.jsonl (one JSON line
per epoch), last.ckpt (the train state after the last saved epoch, for resuming), best.ckpt (the parameters with the
best validation squared error) and summary.json (best epoch, valid and test metrics, timing, status).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxphysvae import checkpoint, data
from jaxphysvae.config import Config, HParams
from jaxphysvae.data.cache import atomic_path
from jaxphysvae.errors import ConfigError
from jaxphysvae.model import PhysVAE
from jaxphysvae.train import evaluate, make_functions, physics_errors


def versions() -> dict:
    import diffrax
    import distrax
    import flax
    import optax
    return {"python": platform.python_version(), "jax": jax.__version__, "flax": flax.__version__,
            "optax": optax.__version__, "diffrax": diffrax.__version__, "distrax": distrax.__version__,
            "device": str(jax.devices()[0].device_kind), "platform": platform.platform()}


def load_splits(config: Config) -> dict[str, data.Dataset]:
    """Train, valid and test splits of the configured data set."""
    sizes = {"train": config.n_train, "valid": config.n_valid, "test": config.n_test}
    out = {}
    for split in data.SPLITS:
        options = {}
        if config.dataset in ("pendulum", "advdif"):
            options = {"seed": config.data_seed}
            if sizes[split] is not None:
                options["n"] = sizes[split]
        out[split] = data.load(config.dataset, split, **options)
    if config.batch_size > out["train"].num_sequences:
        raise ConfigError(f"batch_size {config.batch_size} exceeds the {out['train'].num_sequences} training "
                          f"sequences")
    return out


def data_stats(train: data.Dataset) -> dict:
    """Per-channel standard deviation, minimum and maximum (C,) of the training data, for input noise."""
    return {"std": train.x.std(axis=(0, 2)), "min": train.x.min(axis=(0, 2)), "max": train.x.max(axis=(0, 2))}


_COMPILED: dict = {}


def compiled(config: Config, splits: dict):
    """The model and its jitted functions, shared by every run of the same architecture, data shape and training
    statistics in this process (the number of epochs does not change what is compiled)."""
    x = splits["train"]
    stats = data_stats(x)
    key = (config.replace(epochs=1), x.num_channels, x.num_steps, x.dt,
           tuple(np.round(v, 6).tobytes() for v in stats.values()))
    if key not in _COMPILED:
        model = PhysVAE(config, x.num_channels, x.num_steps, x.dt, data_stats=stats)
        _COMPILED[key] = (model, make_functions(model))
    return _COMPILED[key]


def _write_json(path: Path, value) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2) + "\n")


def fit(config: Config, hparams: HParams, out: str | os.PathLike, seed: int = 0, resume: bool = False,
        progress: bool = True, checkpoint_every: int = 50, preset: str | None = None,
        splits: dict | None = None) -> dict:
    """Train `config` with `hparams` for config.epochs epochs, writing the run directory `out`.

    Args:
      seed: seeds the initialisation and every epoch's randomness (epoch e uses fold_in(key(seed), e), so a resumed
        run reproduces an uninterrupted one exactly).
      resume: continue from out/last.ckpt; the stored configuration must match, but for config.epochs, which may
        grow to extend a run.
      checkpoint_every: epochs between writes of last.ckpt and best.ckpt (also written at the end, on Ctrl-C and
        when training diverges).
      splits: datasets to use instead of loading them by name (train, valid, test).

    Returns:
      the summary (also in out/summary.json). Ctrl-C saves checkpoints and the summary, then re-raises.
    """
    out = Path(out)
    splits = load_splits(config) if splits is None else splits
    model, fns = compiled(config, splits)
    record = json.loads(json.dumps({"preset": preset, "config": config.to_json(), "hparams": hparams.to_json(),
                                    "seed": seed}))
    if resume:
        stored = json.loads((out / "config.json").read_text()) if (out / "config.json").is_file() else None
        if stored is None or not (out / "last.ckpt").is_file():
            raise ConfigError(f"{out}: nothing to resume (no config.json or last.ckpt)")
        comparable = lambda r: ({k: v for k, v in r["config"].items() if k != "epochs"}, r["hparams"], r["seed"])
        if comparable(stored) != comparable(record):
            raise ConfigError(f"{out}: the stored configuration differs from this one; resume with the same "
                              f"preset, --set values and seed (only --epochs may change), or train into a new "
                              f"directory")
    elif (out / "metrics.jsonl").exists():
        raise ConfigError(f"{out} already holds a run; use --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "config.json", {**record, "versions": versions(),
                                      "data": {s: d.source for s, d in splits.items()}})

    run_key = jax.random.key(seed)
    state = fns.init(jax.random.fold_in(run_key, 0), hparams)  # epochs use fold_in(run_key, e), e >= 1
    start, best = 0, {"epoch": 0, "valid_sse": math.inf}
    best_params = state.params
    if resume:
        state, meta = checkpoint.load(out / "last.ckpt", state)
        best_params, _ = checkpoint.load(out / "best.ckpt", state.params)
        start, best = meta["epoch"], meta["best"]
        _truncate_metrics(out / "metrics.jsonl", start)
    # with batch_shards > 1: state and data on every device once, so that no epoch sees new placements (and
    # compiles again)
    state, best_params = fns.replicate((state, best_params))
    x_train = fns.replicate(jnp.asarray(splits["train"].x))

    def save_checkpoints(epoch):
        meta = {"epoch": epoch, "best": best}
        checkpoint.save(out / "best.ckpt", best_params, meta)
        checkpoint.save(out / "last.ckpt", state, meta)

    status, message, train_times = "completed", "", []
    bar = _progress(range(start + 1, config.epochs + 1), progress, config.epochs, start)
    saved_epoch = start
    try:
        with open(out / "metrics.jsonl", "a") as log:
            for epoch in bar:
                t0 = time.perf_counter()
                new_state, metrics = fns.train_epoch(state, x_train, jax.random.fold_in(run_key, epoch), hparams)
                metrics = {k: float(v) for k, v in metrics.items()}
                train_times.append(time.perf_counter() - t0)
                if not all(math.isfinite(v) for v in metrics.values()):
                    status = "diverged"
                    bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
                    message = (f"training diverged at epoch {epoch} (non-finite {', '.join(bad)}); the last good "
                               f"state (epoch {epoch - 1}) and the best checkpoint are kept")
                    break
                row = {"epoch": epoch, **{f"train_{k}": v for k, v in metrics.items()},
                       "train_seconds": train_times[-1]}
                valid = None
                if epoch % config.eval_every == 0 or epoch == config.epochs:
                    valid, _ = evaluate(fns, new_state.params, splits["valid"], hparams, config.eval_batch_size)
                    row.update({f"valid_{k}": v for k, v in valid.items()})
                # commit the epoch only once it is complete, so that an interrupt never half-applies it
                state = new_state
                if valid is not None and valid["sse_per_seq"] < best["valid_sse"]:
                    best = {"epoch": epoch, "valid_sse": valid["sse_per_seq"]}
                    best_params = state.params
                log.write(json.dumps(row) + "\n")
                log.flush()
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{metrics['loss']:.4g}", valid_sse=f"{best['valid_sse']:.4g}",
                                    best=best["epoch"])
                if epoch % checkpoint_every == 0:
                    save_checkpoints(epoch)
                    saved_epoch = epoch
    except KeyboardInterrupt:
        status, message = "interrupted", "interrupted by the user; resume with --resume"
        raise
    finally:
        last_epoch = int(state.step) // max(1, splits["train"].num_sequences // config.batch_size)
        if last_epoch != saved_epoch or not (out / "last.ckpt").is_file():
            save_checkpoints(last_epoch)
        if hasattr(bar, "close"):
            bar.close()
        summary = _summarise(fns, model, best_params, splits, hparams, config, best, status, message,
                             last_epoch, train_times)
        _write_json(out / "summary.json", summary)
        if message:
            print(f"jaxphysvae: {message}")
    return summary


def _summarise(fns, model, params, splits, hparams, config, best, status, message, last_epoch, train_times):
    summary = {"status": status, "message": message, "epochs_run": last_epoch, "best_epoch": best["epoch"]}
    for split in ("valid", "test"):
        metrics, per = evaluate(fns, params, splits[split], hparams, config.eval_batch_size)
        metrics.update(physics_errors(model, per["z_phy"], splits[split]))
        summary[split] = metrics
    if len(train_times) > 1:
        summary["train_seconds_per_epoch"] = float(np.median(train_times[1:]))  # the first epoch compiles
    summary["protocol"] = ("posterior mean of every latent; errors of x_hat = x_PAB against the clean data; mae and "
                           "rmse per value, sse_per_seq summed over channels and time, mean over sequences")
    return summary


def _truncate_metrics(path: Path, epoch: int) -> None:
    if not path.is_file():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epoch]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(r + "\n" for r in rows))


def _progress(epochs, enabled: bool, total: int, start: int):
    if not enabled:
        return epochs
    from tqdm.auto import tqdm
    return tqdm(epochs, total=total, initial=start, unit="epoch", dynamic_ncols=True)


def load_run(out: str | os.PathLike):
    """(config, hparams, model, functions, best params, splits, record) of a run directory."""
    out = Path(out)
    if not (out / "config.json").is_file():
        raise ConfigError(f"{out}: not a run directory (no config.json)")
    record = json.loads((out / "config.json").read_text())
    config = Config.from_json(record["config"])
    hparams = HParams.create(**record["hparams"])
    splits = load_splits(config)
    model, fns = compiled(config, splits)
    template = fns.init(jax.random.key(0), hparams).params
    params, _ = checkpoint.load(out / "best.ckpt", template)
    return config, hparams, model, fns, params, splits, record
