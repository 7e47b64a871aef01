"""The benchmark suite runs end to end in quick mode (tiny models): correctness only, no timing assertions."""

import json
import subprocess
import types

import pytest

from benchmarks import common, run


def test_quick_suite_writes_every_record_the_summary_and_the_report_tables(tmp_path):
    report = tmp_path / "speed.md"
    report.write_text(f"# title\n\n{run.BEGIN}\nold table\n{run.END}\n\nafter\n")
    results = run.main(["--quick", "--out", str(tmp_path / "results"), "--report", str(report)])
    assert set(results) == {name for name, _, _ in run.QUICK}
    for name in results:
        record = json.loads((tmp_path / "results" / f"{name}.json").read_text())
        assert {"jax", "device", "cpu_count", "cores_used", "python"} <= set(record["machine"])
        rows = record["results"]
        for row in rows["compile"] + rows["cli"] if name == "startup" else rows:
            timings = [v for v in row.values() if isinstance(v, dict) and "median_s" in v]
            assert all(t["min_s"] <= t["median_s"] <= t["max_s"] for t in timings)
    speed = results["train_speed"]["results"][0]  # one run's batches split over two host devices
    assert speed["compile_epoch_s"] > 0 and speed["epoch_memory_mib"]["temporaries"] > 0 and speed["peak_rss_mib"] > 0
    assert speed["devices"] == 2 and speed["batch_shards"] == 2
    sweeps = results["sweep_throughput"]["results"]
    assert [(r["members"], r["devices"]) for r in sweeps] == [(1, 1), (2, 2)]  # 2 members sharded over 2 devices
    assert {r["factor"] for r in results["scaling"]["results"]} == {"num_steps", "batch_size", "flow_aux2", "solver"}
    assert [r["part"] for r in results["breakdown"]["results"]] == ["step", "gradient", "decoder", "optimiser"]
    (compiled,) = results["startup"]["results"]["compile"]
    assert compiled["preset"] == run.TAKEISHI and compiled["compile_s"] > 0 and compiled["stablehlo_kib"] > 0
    train, *commands = results["startup"]["results"]["cli"]
    assert train["command"].startswith(f"train --preset {run.TAKEISHI}")
    for run_ in (train["cold"], train["warm"]):  # the phases a run reports add up to less than its process
        phases = sum(v for k, v in run_.items() if k.endswith("_s") and k not in ("process_s", "first_epoch_end_s"))
        assert 0 < run_["first_epoch_end_s"] < run_["process_s"] and phases < run_["process_s"]
    assert [c["command"] for c in commands] == ["--help", "presets", "data info locomotion", "eval RUN"]
    text = report.read_text()
    assert "old table" not in text and "Sweep throughput" in text and "time goes" in text and "Start-up" in text
    assert text.endswith(f"{run.END}\n\nafter\n")
    assert (tmp_path / "results" / "summary.md").read_text().strip() in text


def test_report_without_markers_is_refused(tmp_path):
    report = tmp_path / "speed.md"
    report.write_text("no block\n")
    with pytest.raises(SystemExit, match="no <!-- benchmarks:begin -->"):
        run.update_report(report, "table")


def test_results_record_the_machine(tmp_path):
    path = common.write("probe", {"results": [1]}, directory=tmp_path)
    record = json.loads(path.read_text())
    assert record["results"] == [1] and {"jax", "device", "cpu_count", "python"} <= set(record["machine"])


def test_only_reruns_the_named_benchmarks_and_reads_the_others(tmp_path, monkeypatch):
    """The job runner's bookkeeping; every benchmark's own run is the quick suite's test above."""
    quick = run.QUICK
    out = tmp_path / "results"
    commands = []

    def fake_run(command, cwd):  # stands for `python -m benchmarks.MODULE ... --name NAME --out OUT`
        commands.append(command)
        name = command[command.index("--name") + 1]
        common.write(name, {"benchmark": "rerun", "results": [name]}, directory=out)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(run, "subprocess", types.SimpleNamespace(run=fake_run))
    with pytest.raises(SystemExit, match="unknown benchmark"):
        run.run_jobs(quick, out, ["no_such_benchmark"])
    with pytest.raises(SystemExit, match="missing: run"):
        run.run_jobs(quick, out, ["scaling"])  # the others have no results yet
    assert commands == []
    for name, _, _ in quick:
        common.write(name, {"benchmark": "probe", "results": [name]}, directory=out)
    results = run.run_jobs(quick, out, ["breakdown"])
    assert [c[2] for c in commands] == ["benchmarks.breakdown"] and "--quick" in commands[0]
    assert results["breakdown"]["benchmark"] == "rerun"  # run again
    assert {results[n]["benchmark"] for n in ("train_speed", "sweep_throughput", "scaling")} == {"probe"}  # read
