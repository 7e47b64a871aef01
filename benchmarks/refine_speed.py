"""Fitting each sequence's code at test time (jaxphysvae.refine): Adam against Gauss-Newton, in time and in the error
each reaches.

    python -m benchmarks.refine_speed                  # the locomotion phys-VAE with a linear residual, 100 epochs
    python -m benchmarks.refine_speed --epochs 300 --set dim_z_aux2=10
    python -m benchmarks.refine_speed --quick          # toy widths, 2 epochs, 2 fits: checks the code, not speed

Trains the preset (changed by --set) for --epochs epochs on its built-in data in a temporary directory, then fits
every test sequence's code, from the encoder's, by each method and number of steps: the compiled fit's time (median
over repeats after a warm-up that compiles it) and the squared error per sequence it ends at, beside the encoder's.
Results go to benchmarks/results/NAME.json (default refine_speed).
"""

from __future__ import annotations

import tempfile

from benchmarks import common
from benchmarks.common import ms_range, timed

DEFAULT = "locomotion-phys-vae-tuned"
DEFAULT_SETS = ["residual_hidden=[]", "aux2_least_squares=true"]
FITS = [("adam", 100), ("adam", 200), ("gauss-newton", 3), ("gauss-newton", 5), ("gauss-newton", 10)]
QUICK_FITS = [("adam", 200), ("gauss-newton", 3)]  # --quick: two fits of 32 test sequences


def measure(name: str, sets: list[str], epochs: int, repeats: int, changes: dict | None = None,
            fits=FITS, sequences: int | None = None) -> list[dict]:
    import numpy as np

    from jaxphysvae import presets
    from jaxphysvae.config import HParams, apply_overrides
    from jaxphysvae.fit import fit, load_run
    from jaxphysvae.refine import refine

    config, hp = presets.get(name)
    config, hp = apply_overrides(config.replace(**(changes or {}), epochs=epochs), hp, list(sets))
    with tempfile.TemporaryDirectory() as run_dir:
        fit(config, HParams.create(**hp), run_dir, progress=False)
        _, _, model, _, params, splits, _ = load_run(run_dir)
    x = splits["test"].x[:sequences]
    rows = []
    for method, steps in fits:
        out = {}

        def call():
            out.update(refine(model, params, x, steps=steps, method=method))  # numpy results: it has blocked

        timing = timed(call, repeats)
        rows.append({"preset": name, "sets": list(sets), "epochs": epochs, "cores": common.cores(),
                     "sequences": int(x.shape[0]), "code_size": int(sum(np.asarray(out[k]).shape[1] for k in
                                                                        ("z_phy", "z_aux1", "z_aux2", "s0"))),
                     "method": method, "steps": steps, "sse_encoder": float(out["sse_start"].mean()),
                     "sse_fitted": float(out["sse"].mean()), **timing})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| preset | epochs | sequences | code size | method | steps | ms (min-max) | squared error per sequence, "
             "encoder's code | fitted | time against 200 Adam steps |", "|---|---|---|---|---|---|---|---|---|---|"]
    adam = {r["preset"]: r["median_s"] for r in rows if (r["method"], r["steps"]) == ("adam", 200)}
    for r in rows:
        ratio = f"{r['median_s'] / adam[r['preset']]:.2f}" if r["preset"] in adam else "-"
        lines.append(f"| {r['preset']} ({', '.join(r['sets'])}) | {r['epochs']} | {r['sequences']} | "
                     f"{r['code_size']} | {r['method']} | {r['steps']} | {ms_range(r)} | {r['sse_encoder']:.4f} | "
                     f"{r['sse_fitted']:.4f} | {ratio} |")
    return "\n".join(lines)


def main(argv=None):
    parser = common.parser(__doc__, "refine_speed")
    parser.add_argument("--preset", default=DEFAULT)
    parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                        help=f"configuration changes (default: {' '.join(DEFAULT_SETS)})")
    parser.add_argument("--epochs", type=int, default=100, help="training epochs before the fits")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    common.before_jax(args.cores, args.host_devices)
    from benchmarks.train_speed import quick
    sets = DEFAULT_SETS if args.set is None else args.set
    if args.quick:
        rows = measure(args.preset, sets, 2, 1, quick(args.preset), QUICK_FITS, 32)
    else:
        rows = measure(args.preset, sets, args.epochs, args.repeats)
    return common.report(args, "refine_speed", rows, table)


if __name__ == "__main__":
    main()
