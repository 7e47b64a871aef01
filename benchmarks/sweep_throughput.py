"""Sweep throughput: models trained per second by one vmapped sweep of N members against N sequential runs.

    python -m benchmarks.sweep_throughput [--preset pendulum-phys-vae] [--members 1 4 16 64] [--epochs 5]
    python -m benchmarks.sweep_throughput --host-devices 2     # members sharded over 2 CPU devices

For each N: the seconds of N sequential runs (one compiled epoch, reused) against one sweep of N members (its
member axis sharded over every device when N is a multiple of their number, as jaxphysvae.sweep does), both
after compilation, and the ratio; the compile times are reported apart. Results go to
benchmarks/results/NAME.json (default sweep_throughput).
"""

from __future__ import annotations

import time

from benchmarks import common
from benchmarks.common import cores, first_call
from benchmarks.train_speed import quick


def measure(preset: str, members: int, epochs: int, changes: dict | None = None) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from jaxphysvae import presets
    from jaxphysvae.config import HParams, stack
    from jaxphysvae.runs import compiled, load_splits
    from jaxphysvae.train import as_float32

    config, hp = presets.get(preset)
    config = config.replace(**(changes or {}))
    splits = load_splits(config)
    _, fns = compiled(config, splits)
    x = jnp.asarray(splits["train"].x)
    hps = [as_float32(HParams.create(**{**hp, "alpha": hp.get("alpha", 0.0) * (1 + i / members)}))
           for i in range(members)]
    devices = jax.devices()
    sharded = members % len(devices) == 0
    mesh = Mesh(np.asarray(devices if sharded else devices[:1]), ("members",))
    put = lambda tree: jax.device_put(tree, NamedSharding(mesh, PartitionSpec("members")))

    def sequential():
        for i, h in enumerate(hps):
            state = fns.init(jax.random.key(i), h)
            for e in range(epochs):
                state, _ = fns.train_epoch(state, x, jax.random.key(e), h)
            jax.block_until_ready(state)

    stacked = put(stack(hps))
    keys = put(jax.random.split(jax.random.key(0), members))
    x_all = jax.device_put(x, NamedSharding(mesh, PartitionSpec()))
    v_init = jax.jit(jax.vmap(fns.init_raw))
    v_epoch = jax.jit(jax.vmap(fns.train_epoch_raw, in_axes=(0, None, 0, 0)))

    def vectorised():
        state = v_init(keys, stacked)
        for e in range(epochs):
            state, _ = v_epoch(state, x_all, jax.vmap(lambda k: jax.random.fold_in(k, e))(keys), stacked)
        jax.block_until_ready(state)

    compile_seq = first_call(lambda: jax.block_until_ready(
        fns.train_epoch(fns.init(jax.random.key(0), hps[0]), x, jax.random.key(0), hps[0])))
    compile_vec = first_call(vectorised)
    t0 = time.perf_counter()
    sequential()
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    vectorised()
    vec = time.perf_counter() - t0
    return {"preset": preset, "members": members, "epochs": epochs, "devices": mesh.devices.size, "cores": cores(),
            "sequential_s": seq, "sweep_s": vec, "speedup": seq / vec,
            "model_epochs_per_s_sequential": members * epochs / seq,
            "model_epochs_per_s_sweep": members * epochs / vec, "compile_single_s": compile_seq,
            "first_sweep_call_s": compile_vec}


def table(rows: list[dict]) -> str:
    lines = ["| preset | members | devices | sequential (s) | sweep (s) | speed-up | model-epochs/s (sweep) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['preset']} | {r['members']} | {r['devices']} | {r['sequential_s']:.2f} "
                     f"| {r['sweep_s']:.2f} | {r['speedup']:.2f}x | {r['model_epochs_per_s_sweep']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = common.parser(__doc__, "sweep_throughput")
    parser.add_argument("--preset", default="pendulum-phys-vae")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)
    common.before_jax(args.cores, args.host_devices)
    rows = [measure(args.preset, n, args.epochs, quick(args.preset) if args.quick else None) for n in args.members]
    return common.report(args, "sweep_throughput", rows, table)


if __name__ == "__main__":
    main()
