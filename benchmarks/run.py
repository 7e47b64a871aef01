"""Run the whole benchmark suite: one JSON per benchmark (with the machine, versions and settings), a Markdown
summary, and the benchmark tables of docs/results/speed.md.

    python -m benchmarks.run             # the full suite, ~20 minutes on 2 CPU cores
    python -m benchmarks.run --quick     # tiny models, one repeat: checks that every benchmark runs
    python -m benchmarks.run --only breakdown_1core --only train_speed   # re-run these; the rest from their JSON
    python -m benchmarks.run --accelerator   # on a GPU or TPU: training speed and sweep throughput

Each benchmark runs in its own process, because the CPU set-up (cores, host devices) must be fixed before jax
starts: training speed of the locomotion and pendulum presets; the Takeishi locomotion preset on one core and with
its batches split over two host devices; sweep throughput for 1 to 64 members, sequential against vmapped, on all
cores, on one core and sharded over two host devices, and for the locomotion model; step-time scaling; and where
the Takeishi preset's step spends its time on one core; start-up (cold compilation of every preset's epoch, and
whole CLI processes with empty and warm caches); and fitting codes at test time, Adam against Gauss-Newton.
Results go to benchmarks/results/ (or --out); the tables between the `benchmarks` markers of docs/results/speed.md
(or --report) are rewritten. `--accelerator` runs the suite that measures an accelerator (its jobs need no CPU
set-up: training speed of three presets, and sweep throughput up to 256 members, where a vmapped sweep can use
a GPU's width); its results go to benchmarks/results/accelerator/ and the tables between the
`benchmarks-accelerator` markers.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from benchmarks import breakdown, refine_speed, scaling, startup, sweep_throughput, train_speed
from benchmarks.common import RESULTS

ROOT = Path(__file__).resolve().parents[1]
TAKEISHI = "locomotion-phys-vae-takeishi"
FULL = [
    ("train_speed", "train_speed", []),
    ("train_speed_1core", "train_speed", ["--preset", TAKEISHI, "--cores", "1"]),
    ("train_speed_2devices", "train_speed", ["--preset", TAKEISHI, "--host-devices", "2", "--set", "batch_shards=2"]),
    ("sweep_throughput", "sweep_throughput", ["--members", "1", "4", "16", "64"]),
    ("sweep_throughput_1core", "sweep_throughput", ["--members", "16", "--cores", "1"]),
    ("sweep_throughput_2devices", "sweep_throughput", ["--members", "4", "16", "64", "--host-devices", "2"]),
    ("sweep_throughput_locomotion", "sweep_throughput", ["--preset", TAKEISHI, "--members", "1", "4", "16",
                                                         "--epochs", "2"]),
    ("scaling", "scaling", []),
    ("breakdown_1core", "breakdown", ["--cores", "1"]),  # two-core medians move too much on a shared VM
    ("startup", "startup", ["--cores", "1"]),
    ("refine_speed", "refine_speed", []),
]
QUICK = [
    ("train_speed", "train_speed", ["--preset", TAKEISHI, "--repeats", "1", "--quick", "--host-devices", "2",
                                    "--set", "batch_shards=2"]),
    ("sweep_throughput", "sweep_throughput", ["--preset", TAKEISHI, "--members", "1", "2", "--epochs", "1", "--quick",
                                              "--host-devices", "2"]),
    ("scaling", "scaling", ["--quick"]),
    ("breakdown", "breakdown", ["--quick"]),
    ("startup", "startup", ["--quick", "--cores", "1"]),
    ("refine_speed", "refine_speed", ["--quick"]),
]
ACCELERATOR = [
    ("train_speed", "train_speed", ["--preset", TAKEISHI, "--preset", "locomotion-attnf-seq", "--preset",
                                    "pendulum-phys-vae", "--repeats", "5"]),
    ("sweep_throughput_locomotion", "sweep_throughput", ["--preset", TAKEISHI, "--members", "1", "16", "64",
                                                         "--epochs", "2"]),
    ("sweep_throughput", "sweep_throughput", ["--members", "1", "16", "64", "256", "--epochs", "3"]),
]
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"
ACCELERATOR_MARKERS = "<!-- benchmarks-accelerator:begin -->", "<!-- benchmarks-accelerator:end -->"


def run_jobs(jobs, out: Path, only: list[str] | None = None) -> dict[str, dict]:
    """Run the jobs (only those named in `only`, if given, reading the others' results from out/NAME.json)."""
    names = [name for name, _, _ in jobs]
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; expected some of {', '.join(names)}")
    results = {}
    for i, (name, module, args) in enumerate(jobs, 1):
        if only and name not in only:
            path = out / f"{name}.json"
            if not path.is_file():
                raise SystemExit(f"{path} is missing: run {name} too, or the whole suite")
            results[name] = json.loads(path.read_text())
            continue
        print(f"[{i}/{len(jobs)}] {name}: python -m benchmarks.{module} {' '.join(args)}", flush=True)
        command = [sys.executable, "-m", f"benchmarks.{module}", *args, "--name", name, "--out", str(out)]
        done = subprocess.run(command, cwd=ROOT)
        if done.returncode:
            raise SystemExit(f"benchmark {name} failed (exit {done.returncode}); results so far are in {out}")
        results[name] = json.loads((out / f"{name}.json").read_text())
    return results


def summary(results: dict[str, dict]) -> str:
    first = next(iter(results.values()))["machine"]
    on_cpu = first["device"] == "cpu"
    command = "python -m benchmarks.run" + ("" if on_cpu else " --accelerator")
    lines = [f"Machine: {first['cpu_count']} CPU cores, {first['device']}; Python {first['python']}, jax "
             f"{first['jax']}, flax {first['flax']}, diffrax {first['diffrax']}. Medians over repeats after a warm-up "
             f"(min-max in brackets). `{command}` wrote this table.", ""]
    train = [r for rec in results.values() if rec["benchmark"] == "train_speed" for r in rec["results"]]
    lines += ["Training speed (an epoch is every full batch of the training split in one compiled scan):", "",
              train_speed.table(train), ""]
    where = lambda r: f"{r['cores']} core{'s' if r['cores'] > 1 else ''}" if on_cpu else first["device"]
    sweeps = [{**r, "preset": f"{r['preset']} ({where(r)})"}
              for rec in results.values() if rec["benchmark"] == "sweep_throughput" for r in rec["results"]]
    lines += ["Sweep throughput (N members trained by one vmapped, compiled epoch against N sequential runs, both "
              "after compilation; members sharded over the devices):", "", sweep_throughput.table(sweeps), ""]
    if "scaling" in results:
        lines += ["Cost of one training step of the locomotion phys-VAE against one factor at a time (base: T = 101, "
                  "batch 100, no flow, Euler):", "", scaling.table(results["scaling"]["results"]), ""]
    parts = [r for rec in results.values() if rec["benchmark"] == "breakdown" for r in rec["results"]]
    if parts:
        lines += ["Where a training step's time goes (parts compiled and timed on their own; the step holds the "
                  "gradient, the gradient the decoder's ODE solves):", "", breakdown.table(parts), ""]
    if "startup" in results:
        lines += ["Start-up, one core:", "", startup.table(results["startup"]["results"]), ""]
    if "refine_speed" in results:
        lines += ["Fitting each test sequence's code at test time (jaxphysvae.refine), from the encoder's code of a "
                  "briefly trained model:", "", refine_speed.table(results["refine_speed"]["results"]), ""]
    return "\n".join(lines)


def update_report(report: Path, text: str, markers: tuple[str, str] = (BEGIN, END)) -> None:
    """Replace what lies between the two marker lines of `report` with `text`."""
    begin, end = markers
    content = report.read_text()
    if begin not in content or end not in content:
        raise SystemExit(f"{report} has no {begin} ... {end} block to rewrite")
    block = f"{begin}\n{text}\n{end}"
    report.write_text(re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, content, flags=re.S))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    suite = parser.add_mutually_exclusive_group()
    suite.add_argument("--quick", action="store_true", help="tiny models, one repeat (checks the code, not speed)")
    suite.add_argument("--accelerator", action="store_true",
                       help="the suite for a GPU or TPU (results in benchmarks/results/accelerator/)")
    parser.add_argument("--out", default=None,
                        help="results directory (default benchmarks/results, or its accelerator/ with --accelerator)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this benchmark (repeatable); the summary takes the others from their JSON")
    parser.add_argument("--report", default=None,
                        help="Markdown file whose benchmark tables to rewrite (default: docs/results/speed.md, "
                             "except with --quick)")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else RESULTS / "accelerator" if args.accelerator else RESULTS
    results = run_jobs(QUICK if args.quick else ACCELERATOR if args.accelerator else FULL, out, args.only)
    text = summary(results)
    (out / "summary.md").write_text(text + "\n")
    report = Path(args.report) if args.report else (None if args.quick else ROOT / "docs" / "results" / "speed.md")
    if report is not None:
        update_report(report, text, ACCELERATOR_MARKERS if args.accelerator else (BEGIN, END))
    print(text)
    return results


if __name__ == "__main__":
    main()
