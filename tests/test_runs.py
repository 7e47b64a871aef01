"""Run and sweep directories never lose, mix or hide results: ownership, output checks before compute, data
provenance, clean stops on signals, checkpoints by time, and one-line errors for bad input."""

import errno
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import flax.serialization
import jax
import numpy as np
import pytest

from jaxphysvae import checkpoint, fit as fit_module, rundir, runs as runs_module, sweep as sweep_module
from jaxphysvae.cli import EXIT_DIVERGED, main
from jaxphysvae.config import HParams
from jaxphysvae.errors import ConfigError
from jaxphysvae.fit import fit
from jaxphysvae.interrupt import Interrupted
from jaxphysvae.sweep import sweep
from tests.helpers import CLI_SMALL, pendulum_splits, small_config

ROOT = Path(__file__).resolve().parents[1]
HP = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0)
BASE = dict(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0)
HOLD_LOCK = ("import sys, time; sys.path.insert(0, {root!r}); from jaxphysvae.rundir import RunLock; "
             "lock = RunLock({path!r}).__enter__(); print('locked', flush=True); time.sleep(600)")


@pytest.fixture(scope="module")
def splits():
    return pendulum_splits()


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _hold_lock(path: Path) -> subprocess.Popen:
    """Another process that owns `path` until it is killed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK.format(root=str(ROOT), path=str(path))],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


# --- one owner per directory -------------------------------------------------------------------------------------

def test_a_directory_owned_by_another_process_is_refused_and_freed_when_it_dies(tmp_path, splits, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = _hold_lock(out)
    try:
        assert main(["train", "--preset", "pendulum-phys-vae", "--epochs", "1", "--out", str(out), "--no-progress",
                     *CLI_SMALL]) == 2
        err = capsys.readouterr().err
        assert f"in use by another jaxphysvae process (pid {holder.pid})" in err and err.count("\n") == 1
        assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing of the second run was written
        with pytest.raises(ConfigError, match="in use by another"):
            sweep(small_config(epochs=1), BASE, {"alpha": [1e-2]}, out, progress=False, splits=splits)
        with pytest.raises(ConfigError, match="in use by another"):
            fit(small_config(epochs=1), HP, out, progress=False, splits=splits)
    finally:
        holder.kill()  # SIGKILL: the lock must not outlive its owner
        holder.wait()
    summary = fit(small_config(epochs=1), HP, out, progress=False, splits=splits)
    assert summary["status"] == "completed"


def test_eval_into_a_directory_in_use_is_refused(tmp_path, splits, capsys, monkeypatch):
    out = tmp_path / "run"
    fit(small_config(epochs=1), HP, out, progress=False, splits=splits)
    monkeypatch.setattr(runs_module, "load_splits", lambda config: splits)
    holder = _hold_lock(out)
    try:
        assert main(["eval", str(out)]) == 2
        assert "in use by another jaxphysvae process" in capsys.readouterr().err
        assert main(["eval", str(out), "--out", str(tmp_path / "elsewhere.json")]) == 0  # reads only
        assert json.loads((tmp_path / "elsewhere.json").read_text())["protocol"] == "posterior mean"
    finally:
        holder.kill()
        holder.wait()


# --- outputs checked before any compute --------------------------------------------------------------------------

@pytest.mark.parametrize("case, match", [("file", "is a file, not a directory"), ("under_file", "lies under a file"),
                                         ("read_only", "cannot write into .* .read-only or no permission")])
def test_bad_output_locations_are_refused_before_anything_is_compiled(case, match, tmp_path, splits, monkeypatch,
                                                                      capsys):
    target = tmp_path / "x"
    if case == "file":
        target.write_text("a file")
    elif case == "under_file":
        (tmp_path / "f").write_text("a file")
        target = tmp_path / "f" / "run"
    else:  # tests run as root, for whom chmod does not protect a directory: the kernel's answer is simulated
        target.mkdir()
        real = Path.write_bytes

        def read_only(self, data):
            if self.name.startswith(".write-probe"):
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real(self, data)

        monkeypatch.setattr(Path, "write_bytes", read_only)

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before the output location was checked")

    monkeypatch.setattr(fit_module, "compiled", no_compile)
    monkeypatch.setattr(sweep_module, "compiled", no_compile)
    monkeypatch.setattr(fit_module, "load_splits", lambda config: splits)
    monkeypatch.setattr(sweep_module, "load_splits", lambda config: splits)
    for command in (["train", "--preset", "pendulum-phys-vae", "--out", str(target), *CLI_SMALL],
                    ["sweep", "--preset", "pendulum-phys-vae", "--grid", "alpha=0.1", "--out", str(target),
                     *CLI_SMALL]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.startswith("jaxphysvae: error:") and err.count("\n") == 1
        assert re.search(match, err), err
    if case == "read_only":  # eval checks the run directory before it evaluates
        (target / "config.json").write_text("{}")
        assert main(["eval", str(target)]) == 2
        assert "cannot write into run directory" in capsys.readouterr().err


@pytest.mark.parametrize("argv, match", [
    (["train", "--preset", "pendulum-phys-vae", "--seed", "99999999999999999999999"],
     r"seed must be an integer in \[0"),
    (["train", "--preset", "pendulum-phys-vae", "--seed", "4294967296"], r"seed must be an integer in \[0"),
    (["train", "--preset", "pendulum-phys-vae", "--checkpoint-every", "0"], "checkpoint_every must be a positive"),
    (["sweep", "--preset", "pendulum-phys-vae", "--grid", "seed=-1"], r"seed must be an integer in \[0"),
])
def test_bad_run_options_are_one_line_errors_that_write_nothing(argv, match, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err) and err.count("\n") == 1
    assert not out.exists()


# --- data provenance ---------------------------------------------------------------------------------------------

def test_data_identity_is_recorded_and_other_data_are_refused(tmp_path, splits, monkeypatch, capsys):
    out = tmp_path / "run"
    config = small_config(epochs=2)
    fit(config, HP, out, progress=False, splits=splits)
    recorded = json.loads((out / "config.json").read_text())["data"]
    x = splits["train"].x
    assert recorded["train"]["shape"] == [32, 1, 50]
    assert recorded["train"]["sha256"] == hashlib.sha256(x.astype("<f4").tobytes()).hexdigest()
    other = dict(splits, test=splits["test"].subset(np.arange(15)))  # one test sequence fewer
    with pytest.raises(ConfigError, match=r"the data differ .*test \(trained on \(16, 1, 50\)"):
        fit(config.replace(epochs=3), HP, out, resume=True, progress=False, splits=other)
    assert json.loads((out / "config.json").read_text())["config"]["epochs"] == 2  # a failed resume writes nothing

    monkeypatch.setattr(runs_module, "load_splits", lambda c: splits)
    assert main(["eval", str(out)]) == 0
    own = (out / "eval_test_samples0.json").read_text()
    monkeypatch.setattr(runs_module, "load_splits", lambda c: other)
    assert main(["eval", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the data differ from those this run was trained on" in err and "--other-data" in err
    assert main(["eval", str(out), "--other-data"]) == 0
    digest = rundir.data_identity({"test": other["test"]})["test"]["sha256"]
    written = json.loads((out / f"eval_test_samples0_data-{digest[:12]}.json").read_text())
    assert written["data"]["shape"] == [15, 1, 50] and written["data"]["sha256"] == digest
    assert (out / "eval_test_samples0.json").read_text() == own  # the evaluation on the run's own data is kept


# --- stops, checkpoints and statuses -----------------------------------------------------------------------------

def test_checkpoints_are_written_by_wall_clock_and_after_the_first_epoch(tmp_path, splits, monkeypatch):
    saved = []
    real = checkpoint.save

    def recording(path, tree, meta):
        if Path(path).name == "last.ckpt":
            saved.append(meta["epoch"])
        return real(path, tree, meta)

    monkeypatch.setattr(checkpoint, "save", recording)
    config = small_config(epochs=4)
    fit(config, HP, tmp_path / "a", progress=False, splits=splits, checkpoint_every=1000, checkpoint_seconds=1e9)
    assert saved == [1, 4]  # after the first epoch and at the end
    saved.clear()
    fit(config, HP, tmp_path / "b", progress=False, splits=splits, checkpoint_every=1000, checkpoint_seconds=1e-9)
    assert saved == [1, 2, 3, 4]  # the time limit passed after every epoch
    saved.clear()
    fit(config, HP, tmp_path / "c", progress=False, splits=splits, checkpoint_every=3, checkpoint_seconds=1e9)
    assert saved == [1, 3, 4]


def test_a_run_that_fails_is_not_recorded_as_completed(tmp_path, splits, monkeypatch):
    real, calls = fit_module.evaluate, {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_module, "evaluate", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        fit(small_config(epochs=3), HP, tmp_path, progress=False, splits=splits)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and "RuntimeError: disk on fire" in summary["message"]
    assert summary["epochs_run"] == 1
    assert checkpoint.load(tmp_path / "last.ckpt", _template(splits))[1]["epoch"] == 1


def _template(splits):
    model, fns = fit_module.compiled(small_config(epochs=1), splits)
    return fns.init(jax.random.key(0), HP)


def test_resume_checks_epochs_a_partial_metrics_line_and_a_directory_without_checkpoint(tmp_path, splits, capsys):
    config = small_config(epochs=3)
    out = tmp_path / "run"
    full = fit(config, HP, tmp_path / "full", progress=False, splits=splits)
    fit(config.replace(epochs=2), HP, out, progress=False, splits=splits)
    with pytest.raises(ConfigError, match="has trained 2 epochs; --epochs 1 would end it"):
        fit(config.replace(epochs=1), HP, out, resume=True, progress=False, splits=splits)
    assert json.loads((out / "config.json").read_text())["config"]["epochs"] == 2
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "train_lo')  # a crash in the middle of a write
    # stored by an older version, without a hyper-parameter added since: its default is filled in, no wildcard
    stored = json.loads((out / "config.json").read_text())
    del stored["hparams"]["encoder_lr_scale"]
    (out / "config.json").write_text(json.dumps(stored))
    with pytest.raises(ConfigError, match="stored configuration differs"):
        fit(config, HP._replace(encoder_lr_scale=np.float32(0.5)), out, resume=True, progress=False, splits=splits)
    resumed = fit(config, HP, out, resume=True, progress=False, splits=splits)
    assert "dropped 1 unreadable line" in capsys.readouterr().out
    assert [r["epoch"] for r in _rows(out / "metrics.jsonl")] == [1, 2, 3]
    assert resumed["test"] == full["test"]

    # killed before its first checkpoint: a configuration and nothing else; both a new run and a resume may start
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((out / "config.json").read_text())
    fresh = fit(config, HP, bare, progress=False, splits=splits)
    assert fresh["test"] == full["test"]
    (bare / "last.ckpt").unlink()
    (bare / "best.ckpt").unlink()
    again = fit(config, HP, bare, resume=True, progress=False, splits=splits)
    assert "no checkpoint yet: starting from epoch 0" in capsys.readouterr().out and again["test"] == full["test"]


def test_corrupt_records_are_one_line_errors(tmp_path, splits, capsys):
    out = tmp_path / "run"
    fit(small_config(epochs=1), HP, out, progress=False, splits=splits)
    text = (out / "config.json").read_text()
    (out / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(ConfigError, match="config.json: run configuration .config.json. is corrupt"):
        fit(small_config(epochs=2), HP, out, resume=True, progress=False, splits=splits)
    assert main(["eval", str(out)]) == 2
    assert "is corrupt (not valid JSON" in capsys.readouterr().err
    assert main(["eval", str(out), "--samples", "-2"]) == 2
    assert "--samples must be 0" in capsys.readouterr().err


def test_exit_statuses_of_diverged_and_stopped_runs(tmp_path, monkeypatch, capsys):
    """Divergence itself is tested in test_train; here, what the command line makes of it and of a stop."""
    outcome = {}

    def fake_fit(*args, **kwargs):
        if "signal" in outcome:
            raise Interrupted(outcome["signal"], "stopped by a signal after epoch 2; continue with --resume")
        return {"status": "diverged", "epochs_run": 3, "best_epoch": 2}

    monkeypatch.setattr(fit_module, "fit", fake_fit)
    train = ["train", "--preset", "pendulum-phys-vae", "--out", str(tmp_path / "d"), "--no-progress"]
    assert main(train) == EXIT_DIVERGED == 3
    assert "diverged: 3 epochs" in capsys.readouterr().out
    for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        outcome["signal"] = signum
        assert main(train) == code
        assert "continue with --resume" in capsys.readouterr().err


def test_ctrl_c_saves_and_a_resumed_run_equals_an_uninterrupted_one(tmp_path, splits, monkeypatch):
    """A real SIGINT, delivered while the run is inside an epoch's validation: the run finishes that epoch, saves,
    and raises Interrupted (exit status 130 from the CLI); no exception is raised inside JAX."""
    config = small_config(epochs=5)
    full = fit(config, HP, tmp_path / "full", progress=False, splits=splits, checkpoint_every=1000)
    real, calls = fit_module.evaluate, {"n": 0}

    def interrupting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # during epoch 3
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_module, "evaluate", interrupting)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as stopped:
        fit(config, HP, tmp_path / "cut", progress=False, splits=splits, checkpoint_every=1000)
    assert stopped.value.exit_code == 130
    monkeypatch.setattr(fit_module, "evaluate", real)
    assert signal.getsignal(signal.SIGINT) is before  # the handler is removed again
    cut = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert cut["status"] == "interrupted" and cut["epochs_run"] == 3
    assert checkpoint.load(tmp_path / "cut" / "last.ckpt", _template(splits))[1]["epoch"] == 3
    with pytest.raises(ConfigError, match="already holds a run"):
        fit(config, HP, tmp_path / "cut", progress=False, splits=splits)
    resumed = fit(config, HP, tmp_path / "cut", resume=True, progress=False, splits=splits)
    assert resumed["test"] == full["test"] and resumed["best_epoch"] == full["best_epoch"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "train_seconds"} for r in rows]
    assert strip(_rows(tmp_path / "cut" / "metrics.jsonl")) == strip(_rows(tmp_path / "full" / "metrics.jsonl"))


# A run or sweep in a process of its own, with the tests' small model and data (so that its programs are found in
# the session's compilation cache), ended by a real signal.
RUNNER = """
import sys
sys.path.insert(0, {root!r})
import os, jax
jax.config.update("jax_compilation_cache_dir", os.environ["JAXPHYSVAE_COMPILATION_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
from jaxphysvae.cli import main
from jaxphysvae import fit, sweep
from tests.helpers import pendulum_splits
splits = pendulum_splits()
fit.load_splits = sweep.load_splits = lambda config: splits
sys.exit(main(sys.argv[1:]))
"""


def _start(argv, tmp_path) -> subprocess.Popen:
    """`jaxphysvae ARGV` in a new process, on the tests' pendulum splits."""
    env = {**os.environ, "JAXPHYSVAE_DATA_DIR": str(tmp_path / "data")}
    return subprocess.Popen([sys.executable, "-c", RUNNER.format(root=str(ROOT)), *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, process, timeout=240):
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"process ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("timed out")
        time.sleep(0.2)


def test_sigterm_stops_a_training_process_cleanly_and_it_resumes(tmp_path, monkeypatch, splits):
    out = tmp_path / "run"
    argv = ["train", "--preset", "pendulum-phys-vae", "--epochs", "100000", "--out", str(out), "--no-progress",
            *CLI_SMALL]
    process = _start(argv, tmp_path)
    metrics = out / "metrics.jsonl"
    _wait_for(lambda: metrics.is_file() and len(metrics.read_text().splitlines()) >= 2, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "SIGTERM received" in err and "continue with --resume" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs_run"] >= 2
    assert len(_rows(metrics)) == summary["epochs_run"]
    epochs = summary["epochs_run"] + 1
    monkeypatch.setattr(fit_module, "load_splits", lambda config: splits)
    assert main(["train", "--preset", "pendulum-phys-vae", "--epochs", str(epochs), "--out", str(out), "--resume",
                 "--no-progress", *CLI_SMALL]) == 0
    assert [r["epoch"] for r in _rows(metrics)] == list(range(1, epochs + 1))


# --- sweeps ------------------------------------------------------------------------------------------------------

def test_a_sweep_refuses_an_existing_sweep_and_resumes_to_the_uninterrupted_result(tmp_path, splits):
    grid = {"alpha": [1e-2, 0.5], "seed": [0, 1]}
    config = small_config(epochs=3)
    full = sweep(config, BASE, grid, tmp_path / "full", progress=False, splits=splits)
    with pytest.raises(ConfigError, match="already holds a sweep"):
        sweep(config, BASE, grid, tmp_path / "full", progress=False, splits=splits)
    with pytest.raises(ConfigError, match="nothing to resume"):
        sweep(config, BASE, grid, tmp_path / "none", progress=False, splits=splits, resume=True)
    sweep(config.replace(epochs=2), BASE, grid, tmp_path / "cut", progress=False, splits=splits)
    with pytest.raises(ConfigError, match="stored sweep differs"):
        sweep(config, BASE, {"alpha": [1e-2, 0.4], "seed": [0, 1]}, tmp_path / "cut", progress=False,
              splits=splits, resume=True)
    # as if stored by an older version, without a model setting added since, and resumed with a hyper-parameter
    # that version did not have at its default (a preset's hyper-parameters name them all): both resume
    stored_path = tmp_path / "cut" / sweep_module.CONFIG_FILE
    stored = json.loads(stored_path.read_text())
    assert "encoder_lr_scale" not in stored["members"][0] and stored["config"]["aux2_least_squares"] is False
    del stored["config"]["aux2_least_squares"]
    stored_path.write_text(json.dumps(stored))
    with pytest.raises(ConfigError, match="stored sweep differs"):  # a default is no wildcard
        sweep(config, {**BASE, "encoder_lr_scale": 0.5}, grid, tmp_path / "cut", progress=False, splits=splits,
              resume=True)
    resumed = sweep(config, {**BASE, "encoder_lr_scale": 1.0}, grid, tmp_path / "cut", progress=False,
                    splits=splits, resume=True)
    for a, b in zip(full["members"], resumed["members"]):
        assert (a["alpha"], a["seed"], a["best_epoch"]) == (b["alpha"], b["seed"], b["best_epoch"])
        assert a["test"] == pytest.approx(b["test"], rel=1e-6)


def test_ctrl_c_stops_a_sweep_which_saves_every_member_and_resumes(tmp_path, splits, monkeypatch):
    """A real SIGINT during the validation of epoch 2: the sweep finishes that epoch, saves every member's state,
    and raises Interrupted; resumed, it ends where an uninterrupted sweep ends."""
    grid = {"alpha": [1e-2, 0.5], "seed": [0, 1]}
    config = small_config(epochs=3)
    full = sweep(config, BASE, grid, tmp_path / "full", progress=False, splits=splits)
    members_fns = sweep_module._member_functions(*fit_module.compiled(config, splits))
    calls = {"n": 0}

    def interrupting(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return members_fns.evaluate(*args)

    monkeypatch.setattr(sweep_module, "_member_functions",
                        lambda model, fns: members_fns._replace(evaluate=interrupting))
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted) as stopped:
        sweep(config, BASE, grid, tmp_path / "cut", progress=False, splits=splits, checkpoint_every=1000)
    assert stopped.value.exit_code == 130 and "continue with --resume" in str(stopped.value)
    assert signal.getsignal(signal.SIGINT) is before
    meta = flax.serialization.msgpack_restore((tmp_path / "cut" / sweep_module.STATE_FILE).read_bytes())["meta"]
    assert meta["epoch"] == 2 and len(meta["best_epoch"]) == 4 and not (tmp_path / "cut" / "sweep.json").exists()
    with pytest.raises(ConfigError, match="already holds a sweep"):
        sweep(config, BASE, grid, tmp_path / "cut", progress=False, splits=splits)
    monkeypatch.setattr(sweep_module, "_member_functions", lambda model, fns: members_fns)
    log = tmp_path / "cut" / sweep_module.METRICS_FILE
    log.write_text(log.read_text() + '{"epoch": 3, "loss": [0, 0, 0, 0]}\n{"epoch": 4, "lo')  # past the checkpoint
    resumed = sweep(config, BASE, grid, tmp_path / "cut", progress=False, splits=splits, resume=True)
    for a, b in zip(full["members"], resumed["members"]):
        assert (a["alpha"], a["seed"], a["best_epoch"]) == (b["alpha"], b["seed"], b["best_epoch"])
        assert a["test"] == pytest.approx(b["test"], rel=1e-6)
    # the resumed log is the uninterrupted one: epochs 1 to 3 once each, the same values
    read = lambda d: [json.loads(line) for line in (d / sweep_module.METRICS_FILE).read_text().splitlines()]
    cut, whole = read(tmp_path / "cut"), read(tmp_path / "full")
    assert [r["epoch"] for r in cut] == [1, 2, 3]
    for a, b in zip(whole, cut):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
        assert a["valid_sse_per_seq"] == pytest.approx(b["valid_sse_per_seq"], rel=1e-6)
