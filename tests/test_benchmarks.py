"""The benchmark code runs (quick mode, tiny models): correctness only, no timing assertions."""

import json

from benchmarks import common, scaling


def test_scaling_quick_mode_runs_every_factor():
    rows = scaling.main([], quick=True)
    assert {r["factor"] for r in rows} == set(scaling.FACTORS)
    assert all(r["median_s"] > 0 and r["min_s"] <= r["median_s"] <= r["max_s"] for r in rows)


def test_results_record_the_machine(tmp_path):
    path = common.write("probe", {"results": [1]}, directory=tmp_path)
    record = json.loads(path.read_text())
    assert record["results"] == [1] and {"jax", "device", "cpu_count", "python"} <= set(record["machine"])
