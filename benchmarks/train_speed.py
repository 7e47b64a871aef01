"""Time the training step and the training epoch of presets, with compile time and peak memory.

    python -m benchmarks.train_speed                       # locomotion and pendulum presets, writes JSON + table
    python -m benchmarks.train_speed --preset locomotion-phys-vae-takeishi --repeats 20
    python -m benchmarks.train_speed --host-devices 2 --set batch_shards=2    # one run split over 2 CPU devices

For each preset: compile time of the epoch (lowering and XLA compilation), seconds per train step (one batch),
seconds per training epoch (every batch of the training split in one compiled scan), seconds of a validation pass,
as medians over repeats after a warm-up, with min and max; the compiled epoch's memory (arguments, outputs and XLA
temporaries) and the process's peak resident memory. Results go to benchmarks/results/NAME.json (default train_speed).
"""

from __future__ import annotations

import resource
import time

from benchmarks import common
from benchmarks.common import cores, first_call, ms_range, timed
from jaxphysvae.presets import TOY_WIDTHS  # imports no jax

DEFAULT = ("locomotion-phys-vae-takeishi", "locomotion-phys-vae", "locomotion-nf", "locomotion-attnf",
           "locomotion-attnf-seq", "pendulum-phys-vae")
QUICK_SIZES = {"n_train": 32, "n_valid": 16, "n_test": 16}


def quick(preset: str) -> dict:
    """--quick's changes to `preset`: toy widths and batches, and tiny splits where the data set is generated (the
    locomotion splits are fixed)."""
    from jaxphysvae import data, presets
    generated = presets.get(preset)[0].data.dataset in data.GENERATED
    return {**TOY_WIDTHS, "batch_size": 16, **(QUICK_SIZES if generated else {})}


def measure(name: str, repeats: int, changes: dict | None = None, overrides: list[str] = ()) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxphysvae import presets
    from jaxphysvae.config import HParams, apply_overrides
    from jaxphysvae.runs import compiled, load_splits
    from jaxphysvae.train import as_float32, evaluate

    config, hp = presets.get(name)
    config, hp = apply_overrides(config.replace(**(changes or {})), hp, list(overrides))
    hparams = as_float32(HParams.create(**hp))
    splits = load_splits(config)
    model, fns = compiled(config, splits)
    state = fns.replicate(fns.init(jax.random.key(0), hparams))
    x = fns.replicate(jnp.asarray(splits["train"].x))
    batch = fns.replicate((x[: config.optimisation.batch_size], jnp.ones(config.optimisation.batch_size, bool)))
    key = jax.random.key(1)
    t0 = time.perf_counter()
    train_epoch = fns.train_epoch.jitted.lower(state, x, key, hparams).compile()  # timed and measured as compiled
    compile_epoch = time.perf_counter() - t0
    compile_step = first_call(lambda: jax.block_until_ready(fns.train_step(state, batch, key, hparams)))
    step = timed(lambda: jax.block_until_ready(fns.train_step(state, batch, key, hparams)), repeats)
    epoch = timed(lambda: jax.block_until_ready(train_epoch(state, x, key, hparams)), repeats)
    valid = timed(lambda: evaluate(fns, state.params, splits["valid"], hparams, config.schedule.eval_batch_size),
                  repeats)
    memory = train_epoch.memory_analysis()
    mib = lambda b: b / 2 ** 20
    return {"preset": name, "changes": {k: list(v) if isinstance(v, tuple) else v for k, v in (changes or {}).items()},
            "overrides": list(overrides), "cores": cores(),
            "batch_size": config.optimisation.batch_size, "batch_shards": config.optimisation.batch_shards,
            "devices": len(jax.devices()), "train_sequences": int(x.shape[0]),
            "steps_per_epoch": int(x.shape[0]) // config.optimisation.batch_size, "compile_epoch_s": compile_epoch,
            "compile_step_s": compile_step, "train_step": step, "train_epoch": epoch, "validation": valid,
            "epoch_with_validation_s": epoch["median_s"] + valid["median_s"],
            "epoch_memory_mib": {"arguments": mib(memory.argument_size_in_bytes),
                                 "outputs": mib(memory.output_size_in_bytes),
                                 "temporaries": mib(memory.temp_size_in_bytes)},
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def table(rows: list[dict]) -> str:
    lines = ["| preset | cores | devices | step (ms) | training epoch (s) | epoch + validation (s) | compile (s) "
             "| epoch memory (MiB) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, e, m = r["train_step"], r["train_epoch"], r["epoch_memory_mib"]
        lines.append(f"| {r['preset']} | {r['cores']} | {r['devices']} "
                     f"| {ms_range(s)} "
                     f"| {e['median_s']:.3f} ({e['min_s']:.3f}-{e['max_s']:.3f}) | {r['epoch_with_validation_s']:.3f} "
                     f"| {r['compile_epoch_s']:.1f} | {sum(m.values()):.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = common.parser(__doc__, "train_speed")
    parser.add_argument("--preset", action="append", help="preset(s) to time (default: %s)" % ", ".join(DEFAULT))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="configuration changes")
    args = parser.parse_args(argv)
    common.before_jax(args.cores, args.host_devices)
    rows = [measure(p, args.repeats, quick(p) if args.quick else None, args.set) for p in (args.preset or DEFAULT)]
    return common.report(args, "train_speed", rows, table)


if __name__ == "__main__":
    main()
