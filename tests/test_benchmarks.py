"""The benchmark suite runs end to end in quick mode (tiny models): correctness only, no timing assertions."""

import json
import subprocess
import types

import pytest

from benchmarks import common, refine_speed, run


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
    fits = results["refine_speed"]["results"]
    assert [(r["method"], r["steps"]) for r in fits] == refine_speed.QUICK_FITS
    assert all(r["sse_fitted"] <= r["sse_encoder"] and r["code_size"] == 23 for r in fits)
    text = report.read_text()
    assert "old table" not in text and "Sweep throughput" in text and "time goes" in text and "Start-up" in text
    assert "Fitting each test sequence's code" in text
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


class _Parsed(Exception):
    """Raised where a benchmark, its arguments parsed, would set up the CPU and start."""


@pytest.mark.parametrize("suite", ["FULL", "QUICK", "ACCELERATOR"])
def test_every_suite_passes_each_benchmark_arguments_it_accepts(suite, monkeypatch, tmp_path):
    """A misspelt option in a suite's job list fails here, not after the jobs before it have run for minutes."""
    import importlib

    def parsed(cores, host_devices):
        raise _Parsed

    monkeypatch.setattr(common, "before_jax", parsed)
    for name, module, args in getattr(run, suite):
        with pytest.raises(_Parsed):
            importlib.import_module(f"benchmarks.{module}").main([*args, "--name", name, "--out", str(tmp_path)])


def test_accelerator_suite_writes_its_own_block_and_names_the_device(tmp_path, monkeypatch):
    """--accelerator runs its own jobs and rewrites the accelerator block of the report, not the CPU suite's; its
    sweeps are labelled by the device instead of CPU cores. The records stand for a GPU run (committed CPU rows
    relabelled), so that nothing here needs an accelerator."""
    out = tmp_path / "results"
    commands = []

    def fake_run(command, cwd):
        commands.append(command)
        name = command[command.index("--name") + 1]
        record = json.loads((common.RESULTS / f"{'train_speed' if name == 'train_speed' else 'sweep_throughput'}"
                             ".json").read_text())
        record["machine"]["device"] = "NVIDIA H200"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(record))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(run, "subprocess", types.SimpleNamespace(run=fake_run))
    begin, end = run.ACCELERATOR_MARKERS
    report = tmp_path / "speed.md"
    report.write_text(f"{run.BEGIN}\ncpu tables\n{run.END}\n\n{begin}\nold\n{end}\n")
    run.main(["--accelerator", "--out", str(out), "--report", str(report)])
    assert [c[2] for c in commands] == [f"benchmarks.{module}" for _, module, _ in run.ACCELERATOR]
    text = report.read_text()
    assert text.startswith(f"{run.BEGIN}\ncpu tables\n{run.END}\n") and "\nold\n" not in text
    accelerator_block = text[text.index(begin):]
    assert "`python -m benchmarks.run --accelerator` wrote this table" in accelerator_block
    assert "| pendulum-phys-vae (NVIDIA H200) | 16 |" in accelerator_block and "core" not in accelerator_block.split(
        "Sweep throughput")[1]
