"""Time the training step and the training epoch of presets.

    python -m benchmarks.train_speed                       # locomotion and pendulum presets, writes JSON + table
    python -m benchmarks.train_speed --preset locomotion-phys-vae-takeishi --repeats 20

For each preset: compile time of the epoch, seconds per train step (one batch), seconds per training epoch (every
batch of the training split in one compiled scan), seconds per epoch including validation, as medians over repeats
after a warm-up, with min and max. Results go to benchmarks/results/train_speed.json.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from benchmarks.common import first_call, timed, write
from jaxphysvae import presets
from jaxphysvae.config import HParams
from jaxphysvae.fit import compiled, load_splits
from jaxphysvae.train import evaluate

DEFAULT = ("locomotion-phys-vae-takeishi", "locomotion-phys-vae", "pendulum-phys-vae")


def measure(name: str, repeats: int, changes: dict | None = None) -> dict:
    config, hp = presets.get(name)
    config = config.replace(**(changes or {}))
    hparams = HParams.create(**hp)
    splits = load_splits(config)
    model, fns = compiled(config, splits)
    state = fns.init(jax.random.key(0), hparams)
    x = jnp.asarray(splits["train"].x)
    batch = (x[: config.batch_size], jnp.ones(config.batch_size, bool))
    key = jax.random.key(1)
    compile_epoch = first_call(lambda: jax.block_until_ready(fns.train_epoch(state, x, key, hparams)))
    compile_step = first_call(lambda: jax.block_until_ready(fns.train_step(state, batch, key, hparams)))
    step = timed(lambda: jax.block_until_ready(fns.train_step(state, batch, key, hparams)), repeats)
    epoch = timed(lambda: jax.block_until_ready(fns.train_epoch(state, x, key, hparams)), repeats)
    valid = timed(lambda: evaluate(fns, state.params, splits["valid"], hparams, config.eval_batch_size), repeats)
    return {"preset": name, "changes": changes or {}, "batch_size": config.batch_size,
            "train_sequences": int(x.shape[0]), "steps_per_epoch": int(x.shape[0]) // config.batch_size,
            "compile_epoch_s": compile_epoch, "compile_step_s": compile_step, "train_step": step,
            "train_epoch": epoch, "validation": valid,
            "epoch_with_validation_s": epoch["median_s"] + valid["median_s"]}


def table(rows: list[dict]) -> str:
    lines = ["| preset | step (ms) | training epoch (s) | epoch + validation (s) | compile (s) |",
             "|---|---|---|---|---|"]
    for r in rows:
        s, e = r["train_step"], r["train_epoch"]
        lines.append(f"| {r['preset']} | {1e3 * s['median_s']:.1f} ({1e3 * s['min_s']:.1f}-{1e3 * s['max_s']:.1f}) "
                     f"| {e['median_s']:.3f} ({e['min_s']:.3f}-{e['max_s']:.3f}) | {r['epoch_with_validation_s']:.3f} "
                     f"| {r['compile_epoch_s']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", action="append", help="preset(s) to time (default: %s)" % ", ".join(DEFAULT))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--name", default="train_speed", help="results file name")
    args = parser.parse_args(argv)
    rows = [measure(p, args.repeats) for p in (args.preset or DEFAULT)]
    path = write(args.name, {"benchmark": "train_speed", "results": rows})
    print(table(rows))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
