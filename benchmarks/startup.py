"""Start-up: what a run costs before and around its epochs, cold and warm.

    python -m benchmarks.startup                          # both parts below
    python -m benchmarks.startup --part compile --preset locomotion-attnf
    python -m benchmarks.startup --part cli --cores 1

Part `compile` (in this process, no cache on disk): for every preset, the seconds to trace, lower and XLA-compile
its training epoch, and the size of the lowered program; what every cold run pays once per model.
Part `cli` (whole `jaxphysvae` processes, each pinned to the cores given): for the locomotion presets, `train`
with empty caches (cold) and then twice with the caches it filled (warm; the faster of the two; once in --quick
mode, with tiny networks and 2 epochs), reporting the
whole process, the time to the end of the first epoch, and the run's own phases from its summary.json (data, model
and init, first epoch, the remaining epochs, validation, final evaluation; the rest is Python and library imports);
then `--help`, `presets`, `data info locomotion` and `eval` of the warm run.
Results go to benchmarks/results/NAME.json (default startup).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common

LOCOMOTION = ("locomotion-phys-vae-takeishi", "locomotion-phys-vae", "locomotion-nf", "locomotion-attnf",
              "locomotion-attnf-seq", "locomotion-nn-only")
# the epochs of the side-by-side comparison with the published code (docs/results/speed.md): 100 for the Takeishi
# preset, 50 else
EPOCHS = {"locomotion-phys-vae-takeishi": 100}
QUICK_SET = ["feat_hidden=[16]", "feat_dim=16", "unmixer_hidden=[16]", "residual_hidden=[16]", "init_hidden=[16]",
             "hamiltonian_hidden=[16]"]


def compile_times(name: str, quick: bool) -> dict:
    import jax
    import jax.numpy as jnp

    from jaxphysvae import presets
    from jaxphysvae.config import HParams, apply_overrides
    from jaxphysvae.runs import compiled, load_splits
    from jaxphysvae.train import as_float32

    config, hp = presets.get(name)
    config, hp = apply_overrides(config, hp, QUICK_SET if quick else [])
    hparams = as_float32(HParams.create(**hp))
    splits = load_splits(config)
    _, fns = compiled(config, splits)
    state = fns.init(jax.random.key(0), hparams)
    x = jnp.asarray(splits["train"].x)
    t0 = time.perf_counter()
    traced = fns.train_epoch.jitted.trace(state, x, jax.random.key(1), hparams)
    t1 = time.perf_counter()
    lowered = traced.lower()
    t2 = time.perf_counter()
    lowered.compile()
    t3 = time.perf_counter()
    jax.clear_caches()
    return {"preset": name, "trace_s": t1 - t0, "lower_s": t2 - t1, "compile_s": t3 - t2, "total_s": t3 - t0,
            "stablehlo_kib": len(lowered.as_text()) / 1024}


def _cli(argv: list[str], env: dict, cores: int | None) -> tuple[float, float]:
    """(seconds, Unix time at launch) of one `jaxphysvae` process."""
    prefix = [] if cores is None else ["taskset", "-c", ",".join(map(str, sorted(os.sched_getaffinity(0))[:cores]))]
    launched, t0 = time.time(), time.perf_counter()
    done = subprocess.run(prefix + [sys.executable, "-m", "jaxphysvae.cli", *argv], env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"jaxphysvae {' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, launched


def _train(preset: str, epochs: int, out: Path, env: dict, cores, extra: list[str]) -> dict:
    seconds, launched = _cli(["train", "--preset", preset, "--epochs", str(epochs), "--out", str(out),
                              "--no-progress", *extra], env, cores)
    timing = json.loads((out / "summary.json").read_text())["timing"]
    return {"process_s": seconds, "first_epoch_end_s": timing.pop("first_epoch_end_unix") - launched, **timing}


def cli_times(quick: bool, cores: int | None, presets: list[str]) -> list[dict]:
    rows, repeats = [], 1 if quick else 2
    with tempfile.TemporaryDirectory(prefix="jaxphysvae-startup-") as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "JAXPHYSVAE_COMPILATION_CACHE": str(tmp / "xla")}
        extra = [a for s in QUICK_SET for a in ("--set", s)] if quick else []
        for preset in presets:
            epochs = 2 if quick else EPOCHS.get(preset, 50)
            cold = _train(preset, epochs, tmp / f"{preset}-cold", env, cores, extra)
            warm = [_train(preset, epochs, tmp / f"{preset}-warm{i}", env, cores, extra) for i in range(repeats)]
            rows.append({"command": f"train --preset {preset} --epochs {epochs}", "cold": cold,
                         "warm": min(warm, key=lambda r: r["process_s"])})
            print(rows[-1], flush=True)
        run = tmp / f"{presets[0]}-warm0"
        for argv in (["--help"], ["presets"], ["data", "info", "locomotion"], ["eval", str(run)]):
            best = min(_cli(argv, env, cores)[0] for _ in range(repeats + 1))
            rows.append({"command": " ".join(argv[:3]).replace(str(run), "RUN"), "warm": {"process_s": best}})
    return rows


def table(results: dict) -> str:
    """The two parts as Markdown tables; `results` holds "compile" and / or "cli" rows."""
    lines = ["Cold compilation of the training epoch (no cache on disk):", "",
             "| preset | trace (s) | lower (s) | XLA compile (s) | total (s) | StableHLO (KiB) |",
             "|---|---|---|---|---|---|"]
    for r in results.get("compile", []):
        lines.append(f"| {r['preset']} | {r['trace_s']:.1f} | {r['lower_s']:.1f} | {r['compile_s']:.1f} "
                     f"| {r['total_s']:.1f} | {r['stablehlo_kib']:.0f} |")
    if results.get("cli"):
        lines += ["", "Whole `jaxphysvae` processes (cold: empty caches; warm: the caches a first run filled):", "",
                  "| command | cold process (s) | cold first epoch ends at (s) | warm process (s) "
                  "| warm first epoch (s) | warm: data + model + init (s) | warm: other epochs (s) "
                  "| warm: validation + final evaluation (s) |", "|---|---|---|---|---|---|---|---|"]
        for r in results["cli"]:
            c, w = r.get("cold"), r["warm"]
            if c is None:
                lines.append(f"| {r['command']} | | | {w['process_s']:.2f} | | | | |")
                continue
            lines.append(f"| {r['command']} | {c['process_s']:.1f} | {c['first_epoch_end_s']:.1f} "
                         f"| {w['process_s']:.1f} | {w['first_epoch_s']:.2f} | {w['data_s'] + w['build_s']:.2f} "
                         f"| {w['other_epochs_s']:.1f} | {w['validation_s'] + w['final_evaluation_s']:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = common.parser(__doc__, "startup")
    parser.add_argument("--part", choices=("both", "compile", "cli"), default="both")
    parser.add_argument("--preset", action="append", help="presets (default: every preset for `compile`, the "
                                                          "locomotion ones for `cli`)")
    args = parser.parse_args(argv)
    cores = args.cores
    common.before_jax(args.cores, args.host_devices)
    from jaxphysvae import presets
    results = {}
    if args.part in ("both", "compile"):
        names = args.preset or ([LOCOMOTION[0]] if args.quick else [n for n, _ in presets.describe()])
        results["compile"] = []
        for name in names:
            results["compile"].append(compile_times(name, args.quick))
            print(results["compile"][-1], flush=True)
    if args.part in ("both", "cli"):
        results["cli"] = cli_times(args.quick, cores, args.preset or ([LOCOMOTION[0]] if args.quick else
                                                                      list(LOCOMOTION)))
    path = common.write(args.name, {"benchmark": "startup", "results": results}, directory=args.out)
    print(table(results))
    print(f"written to {path}")
    return results


if __name__ == "__main__":
    main()
