"""Sweep throughput: models trained per second by one vmapped sweep of N members against N sequential runs.

    python -m benchmarks.sweep_throughput [--preset pendulum-phys-vae] [--members 1 4 16 64] [--epochs 5]

For each N: the seconds of N sequential fit-equivalent epoch loops (one compiled epoch, reused) against one sweep
of N members (compilation reported apart), and the ratio. Results go to benchmarks/results/sweep_throughput.json.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from benchmarks.common import first_call, write
from jaxphysvae import presets
from jaxphysvae.config import HParams, stack
from jaxphysvae.fit import compiled, load_splits


def measure(preset: str, members: int, epochs: int, changes: dict | None = None) -> dict:
    config, hp = presets.get(preset)
    config = config.replace(**(changes or {}))
    splits = load_splits(config)
    _, fns = compiled(config, splits)
    x = jnp.asarray(splits["train"].x)
    hps = [HParams.create(**{**hp, "alpha": hp.get("alpha", 0.0) * (1 + i / members)}) for i in range(members)]

    def sequential():
        for i, h in enumerate(hps):
            state = fns.init(jax.random.key(i), h)
            for e in range(epochs):
                state, _ = fns.train_epoch(state, x, jax.random.key(e), h)
            jax.block_until_ready(state)

    stacked = stack(hps)
    keys = jax.random.split(jax.random.key(0), members)
    v_init = jax.jit(jax.vmap(fns.init_raw))
    v_epoch = jax.jit(jax.vmap(fns.train_epoch_raw, in_axes=(0, None, 0, 0)))

    def vectorised():
        state = v_init(keys, stacked)
        for e in range(epochs):
            state, _ = v_epoch(state, x, jax.vmap(lambda k: jax.random.fold_in(k, e))(keys), stacked)
        jax.block_until_ready(state)

    compile_seq = first_call(lambda: jax.block_until_ready(fns.train_epoch(fns.init(keys[0], hps[0]), x, keys[0],
                                                                           hps[0])))
    compile_vec = first_call(vectorised)
    t0 = time.perf_counter()
    sequential()
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    vectorised()
    vec = time.perf_counter() - t0
    return {"preset": preset, "members": members, "epochs": epochs, "sequential_s": seq, "sweep_s": vec,
            "speedup": seq / vec, "models_per_s_sequential": members * epochs / seq,
            "models_per_s_sweep": members * epochs / vec, "compile_single_s": compile_seq,
            "first_sweep_call_s": compile_vec}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="pendulum-phys-vae")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    rows = [measure(args.preset, n, args.epochs) for n in args.members]
    path = write("sweep_throughput", {"benchmark": "sweep_throughput", "results": rows})
    print("| members | sequential (s) | sweep (s) | speed-up | model-epochs/s (sweep) |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['members']} | {r['sequential_s']:.2f} | {r['sweep_s']:.2f} | {r['speedup']:.2f}x | "
              f"{r['models_per_s_sweep']:.1f} |")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
