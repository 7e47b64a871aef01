"""How the cost of a training step grows with the work: sequence length T, batch size, flow length K, solver.

    python -m benchmarks.scaling [--repeats 10] [--quick]

Synthetic data of the locomotion shape (3 channels) on the locomotion phys-VAE architecture; each row changes one
factor from the base (T = 101, batch 100, K = 0, Euler). Medians over repeats after warm-up, with min and max.
Results go to benchmarks/results/NAME.json (default scaling).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import common
from benchmarks.common import ms_range, timed
from jaxphysvae import presets
from jaxphysvae.config import HParams
from jaxphysvae.model import PhysVAE
from jaxphysvae.train import make_functions

FACTORS = {"num_steps": [26, 51, 101, 201], "batch_size": [25, 50, 100, 200], "flow_aux2": [0, 4, 12, 32],
           "solver": ["euler", "heun", "tsit5"]}


@functools.lru_cache
def _functions(config, num_steps: int):
    """The compiled functions of one configuration and length, built once: the rows that repeat the base (each
    factor's list holds the base value) reuse its compiled step."""
    return make_functions(PhysVAE(config, 3, num_steps, 2.0 / (num_steps - 1)), config)


def step_time(num_steps=101, batch_size=100, flow_aux2=0, solver="euler", repeats=10, base="locomotion-phys-vae",
              small=False) -> dict:
    config, hp = presets.get(base)
    changes = dict(batch_size=batch_size, flow_aux2=flow_aux2, solver=solver)
    if small:
        changes.update(presets.TOY_WIDTHS)
    fns = _functions(config.replace(**changes), num_steps)
    hparams = HParams.create(**hp)
    state = fns.init(jax.random.key(0), hparams)
    t = np.linspace(0, 2 * np.pi, num_steps)
    x = jnp.asarray(0.5 * np.sin(t[None, None, :] + np.arange(3)[None, :, None])
                    + 0.05 * np.random.default_rng(0).normal(size=(batch_size, 3, num_steps)), jnp.float32)
    batch = (x, jnp.ones(batch_size, bool))
    run = lambda: jax.block_until_ready(fns.train_step(state, batch, jax.random.key(1), hparams))
    return timed(run, repeats)


def table(rows: list[dict]) -> str:
    lines = ["| factor | value | ms per step (min-max) |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['factor']} | {r['value']} | {ms_range(r)} |")
    return "\n".join(lines)


def main(argv=None):
    parser = common.parser(__doc__, "scaling")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    common.before_jax(args.cores, args.host_devices)
    rows = []
    base = {"num_steps": 26, "batch_size": 8} if args.quick else {}  # quick: tiny models, first value of each factor
    for factor, values in FACTORS.items():
        for value in values[:1] if args.quick else values:
            timing = step_time(**{**base, factor: value}, repeats=1 if args.quick else args.repeats, small=args.quick)
            rows.append({"factor": factor, "value": value, **timing})
            print(f"{factor}={value}: {1e3 * timing['median_s']:.1f} ms per step", flush=True)
    return common.report(args, "scaling", rows, table)


if __name__ == "__main__":
    main()
