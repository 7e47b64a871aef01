"""Timing helpers shared by the benchmarks: medians over repeats after warm-up, the CPU set-up a benchmark runs on,
and a JSON record of the machine.

jax is imported inside the functions: `before_jax` must be able to run before it starts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"


def before_jax(cores: int | None = None, host_devices: int | None = None) -> None:
    """Restrict this process to the first `cores` CPU cores and split the CPU into `host_devices` jax devices.
    Both must happen before jax starts: XLA sizes its thread pools from the affinity mask when it starts."""
    if cores is not None:
        available = sorted(os.sched_getaffinity(0))
        if not 1 <= cores <= len(available):
            raise SystemExit(f"--cores must lie in 1..{len(available)}, got {cores}")
        os.sched_setaffinity(0, available[:cores])
    if host_devices is not None:
        from jaxphysvae.cli import use_host_devices
        use_host_devices(host_devices)


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0))


def timed(fn: Callable, repeats: int, warmup: int = 1) -> dict:
    """Run fn() (which must block until its work is done) warmup + repeats times; seconds of the repeats."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": repeats}


def ms_range(timing: dict) -> str:
    """A `timed` result as a table cell in milliseconds: "median (min-max)"."""
    return f"{1e3 * timing['median_s']:.1f} ({1e3 * timing['min_s']:.1f}-{1e3 * timing['max_s']:.1f})"


def first_call(fn: Callable) -> float:
    """Seconds of the first call (compilation plus one run)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def machine() -> dict:
    import jax

    from jaxphysvae.runs import versions
    return {**versions(), "cpu_count": os.cpu_count(), "cores_used": cores(),
            "devices": [str(d) for d in jax.devices()], "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "node": platform.node()}


def write(name: str, payload: dict, directory: Path = RESULTS) -> Path:
    from jaxphysvae.files import atomic_path
    path = Path(directory) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path


def parser(doc: str, name: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares; `name` is the default results file name."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny models and data (checks the code, not speed)")
    p.add_argument("--cores", type=int, default=None, help="run on this many CPU cores (affinity)")
    p.add_argument("--host-devices", type=int, default=None, help="split the CPU into this many devices")
    p.add_argument("--name", default=name, help="results file name")
    p.add_argument("--out", default=str(RESULTS), help="results directory")
    return p


def report(args: argparse.Namespace, benchmark: str, rows: list[dict], table: Callable) -> list[dict]:
    """Write rows to OUT/NAME.json with the machine and print them as a table."""
    path = write(args.name, {"benchmark": benchmark, "results": rows}, directory=args.out)
    print(table(rows))
    print(f"written to {path}")
    return rows
