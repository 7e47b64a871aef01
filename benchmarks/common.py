"""Timing helpers shared by the benchmarks: medians over repeats after warm-up, and a JSON record of the machine."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import jax

from jaxphysvae.data.cache import atomic_path
from jaxphysvae.fit import versions

RESULTS = Path(__file__).resolve().parent / "results"


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


def first_call(fn: Callable) -> float:
    """Seconds of the first call (compilation plus one run)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def machine() -> dict:
    return {**versions(), "cpu_count": os.cpu_count(), "devices": [str(d) for d in jax.devices()],
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "node": platform.node()}


def write(name: str, payload: dict, directory: Path = RESULTS) -> Path:
    path = Path(directory) / f"{name}.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path
