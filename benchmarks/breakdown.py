"""Where a training step's time goes: the decoder's ODE solves, the rest of the gradient, the optimiser update.

    python -m benchmarks.breakdown                                  # locomotion-phys-vae-takeishi, all cores
    python -m benchmarks.breakdown --cores 1 --preset locomotion-nf

Each part is compiled on its own and timed, the step on the whole training split and the others on its first
batch (medians over repeats after a warm-up, with min and max):
  step       a training step inside the compiled epoch (`train_epoch` time / its number of steps: gradient and
             optimiser update, with the batch's gather);
  gradient   the objective and its gradient (`jax.value_and_grad` of `model.loss`);
  decoder    the decoder's ODE solves and residual network with their gradient, at the encoder's posterior means;
  optimiser  the optimiser's update and its application to the parameters.
The parts overlap (the step holds the gradient, the gradient holds the decoder); what the gradient spends outside
the decoder is the encoder and the loss. Results go to benchmarks/results/NAME.json (default breakdown).
"""

from __future__ import annotations

from benchmarks import common
from benchmarks.common import ms_range, timed

DEFAULT = "locomotion-phys-vae-takeishi"


def parts(name: str, repeats: int, changes: dict | None = None) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from jaxphysvae import presets
    from jaxphysvae.config import HParams
    from jaxphysvae.runs import compiled, load_splits
    from jaxphysvae.train import apply_gradients, as_float32, make_optimizer

    config, hp = presets.get(name)
    config = config.replace(**(changes or {}))
    if config.optimisation.batch_shards != 1:
        raise SystemExit("the breakdown times one device: use batch_shards=1")
    hparams = as_float32(HParams.create(**hp))
    splits = load_splits(config)
    model, fns = compiled(config, splits)
    state = fns.init(jax.random.key(0), hparams)
    x_train = jnp.asarray(splits["train"].x)
    steps = -(-x_train.shape[0] // config.optimisation.batch_size)
    x = x_train[: config.optimisation.batch_size]
    mask, key = jnp.ones(x.shape[0], bool), jax.random.key(1)
    optimizer = make_optimizer(config.optimisation)
    post = model.encode(state.params, x)
    z, _ = model.latents(state.params, post, None)

    def decoder(params):
        return sum(jnp.sum(r ** 2) for r in model.decode(params, z, post.s0))

    def update(state, grads):
        return apply_gradients(optimizer, state, grads, hparams)[0]

    grads = jax.tree.map(lambda p: 1e-2 * p, state.params)
    programs = {
        "step": (fns.train_epoch.jitted, (state, x_train, key, hparams)),
        "gradient": (jax.value_and_grad(model.loss, has_aux=True), (state.params, x, mask, key, hparams)),
        "decoder": (jax.value_and_grad(decoder), (state.params,)),
        "optimiser": (update, (state, grads)),
    }
    rows = []
    for part, (fn, args) in programs.items():
        executable = jax.jit(fn).lower(*args).compile()
        timing = timed(lambda: jax.block_until_ready(executable(*args)), repeats)
        if part == "step":
            timing = {k: v / steps if k.endswith("_s") else v for k, v in timing.items()}
        rows.append({"preset": name, "part": part, "cores": common.cores(), "batch_size": int(x.shape[0]), **timing})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| preset | cores | part | ms (min-max) | share of the step |", "|---|---|---|---|---|"]
    step = {(r["preset"], r["cores"]): r["median_s"] for r in rows if r["part"] == "step"}
    for r in rows:
        share = r["median_s"] / step[(r["preset"], r["cores"])]
        lines.append(f"| {r['preset']} | {r['cores']} | {r['part']} | {ms_range(r)} | {100 * share:.0f} % |")
    return "\n".join(lines)


def main(argv=None):
    parser = common.parser(__doc__, "breakdown")
    parser.add_argument("--preset", default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    common.before_jax(args.cores, args.host_devices)
    from benchmarks.train_speed import quick
    rows = parts(args.preset, 1 if args.quick else args.repeats, quick(args.preset) if args.quick else None)
    return common.report(args, "breakdown", rows, table)


if __name__ == "__main__":
    main()
