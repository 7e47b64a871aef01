import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from jaxphysvae.cli import REFINE_METHODS, REFINE_PARTS, host_device_flags, main
from jaxphysvae.config import HParams
from jaxphysvae.errors import ConfigError
from jaxphysvae.fit import fit
from jaxphysvae.predict import predict
from jaxphysvae.refine import METHODS, PARTS, refine
from jaxphysvae.evaluation import evaluate, physics_errors
from jaxphysvae.sweep import grid_members, load_any, load_member, parse_grid, sweep
from tests.helpers import CLI_SMALL, pendulum_splits, small_config

BASE = dict(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0)
ROOT = Path(__file__).resolve().parents[1]


def test_members_equal_runs_alone_and_a_diverging_member_is_frozen(tmp_path):
    splits = pendulum_splits()
    config = small_config(epochs=2, rollbacks=1, rollback_lr_factor=1.0)  # the retry at lr 1e8 diverges again
    result = sweep(config, BASE, {"alpha": [1e-2, 0.5], "seed": [1], "lr": [1e-3, 1e8]}, tmp_path / "sweep",
                   progress=False, splits=splits)
    rows = result["members"]
    assert len(rows) == 4
    assert {r["status"] for r in rows if r["lr"] == 1e8} == {"diverged"}
    assert [len(r["rollbacks"]) for r in rows] == [0, 1, 0, 1]
    assert {r["diverged_at_epoch"] for r in rows if r["lr"] == 1e8} == {2}
    assert {r["status"] for r in rows if r["lr"] == 1e-3} == {"completed"}
    for r in rows:
        assert np.isfinite(r["test"]["sse_per_seq"])  # frozen at the last good state, never NaN
    member = next(r for r in rows if r["alpha"] == 0.5 and r["seed"] == 1 and r["lr"] == 1e-3)
    alone = fit(config, HParams.create(**{**BASE, "alpha": 0.5}), tmp_path / "alone", seed=1, progress=False,
                splits=splits)
    assert member["best_epoch"] == alone["best_epoch"]
    for k in ("mae", "rmse", "sse_per_seq", "omega_mae", "omega_rel_err"):  # physics errors as fit reports them
        assert member["test"][k] == pytest.approx(alone["test"][k], rel=1e-4)
    table = (tmp_path / "sweep" / "sweep.md").read_text()
    assert table.count("\n") == 6 and "diverged" in table and "test omega MAE" in table
    assert table.startswith("| alpha | seed | lr | status |")  # what varies, not every hyper-parameter
    # a member loads as a run does: its best parameters give its row's test metrics again
    index = rows.index(member)
    _, hparams, model, fns, params, loaded, row = load_member(tmp_path / "sweep", index, splits=splits)
    assert row == json.loads(json.dumps(member)) and float(hparams.alpha) == 0.5
    again, per = evaluate(fns, params, loaded["test"], hparams, config.schedule.eval_batch_size)
    again.update(physics_errors(model, per["z_phy"], loaded["test"]))
    for k in ("mae", "rmse", "sse_per_seq", "omega_mae"):
        assert again[k] == pytest.approx(member["test"][k], rel=1e-5)
    with pytest.raises(ConfigError, match="no member 4; the sweep has 4"):
        load_member(tmp_path / "sweep", 4, splits=splits)
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["members"][0]["alpha"] == 0.01
    # the log: every epoch, every member; each member's best logged validation error is its row's, at its best epoch
    log = [json.loads(line) for line in (tmp_path / "sweep" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2] and all(len(r["loss"]) == 4 for r in log)
    for m, r in enumerate(rows):
        valid = [(e["valid_sse_per_seq"][m], e["epoch"]) for e in log if e["valid_sse_per_seq"][m] is not None]
        if r["status"] == "completed":
            assert min(valid)[0] == pytest.approx(r["valid"]["sse_per_seq"], rel=1e-5)
            assert min(valid)[1] == r["best_epoch"]
    assert [e["alive"] for e in log][-1] == [r["status"] == "completed" for r in rows]
    assert log[0]["rolled_back"] == [1, 3]  # the two lr 1e8 members, rolled back once each at epoch 1


def test_every_member_of_a_grid_with_two_seeds_equals_its_run_alone(tmp_path):
    """Seeds listed out of order against two alphas: each member (alpha, seed) must be that run, not another's. With
    a parameter average (ema_decay), which both must validate and report, as the run alone does."""
    splits = pendulum_splits()
    config = small_config(epochs=2)
    base = {**BASE, "ema_decay": 0.8}
    rows = sweep(config, base, {"seed": [2, 0], "alpha": [0.5, 1e-2]}, tmp_path / "sweep", progress=False,
                 splits=splits)["members"]
    assert [(r["seed"], r["alpha"]) for r in rows] == [(2, 0.5), (2, 1e-2), (0, 0.5), (0, 1e-2)]
    log = [json.loads(line) for line in (tmp_path / "sweep" / "metrics.jsonl").read_text().splitlines()]
    for m, r in enumerate(rows):
        run = tmp_path / f"{r['seed']}-{r['alpha']}"
        alone = fit(config, HParams.create(**{**base, "alpha": r["alpha"]}), run, seed=r["seed"], progress=False,
                    splits=splits)
        assert r["best_epoch"] == alone["best_epoch"]
        logged = [json.loads(line)["valid_sse_per_seq"] for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [e["valid_sse_per_seq"][m] for e in log] == pytest.approx(logged, rel=1e-4)  # every epoch's
        for k in ("mae", "rmse", "sse_per_seq"):
            assert r["test"][k] == pytest.approx(alone["test"][k], rel=1e-4), (r["seed"], r["alpha"], k)
    assert len({r["test"]["sse_per_seq"] for r in rows}) == 4


def test_grid_errors():
    with pytest.raises(ConfigError, match="cannot sweep 'feat_dim'"):
        grid_members(BASE, {"feat_dim": [8, 16]})
    with pytest.raises(ConfigError, match="has no values"):
        grid_members(BASE, {"alpha": []})
    assert len(grid_members(BASE, {"alpha": [1, 2, 3], "seed": [0, 1]})) == 6
    grid = parse_grid(["alpha=1e-3,0.1", " seed = 0,2", "retime=0.12,"])
    assert grid == {"alpha": [1e-3, 0.1], "seed": [0, 2], "retime": [0.12]}
    assert [type(v) for v in grid["seed"]] == [int, int]
    for items, message in ((["alpha"], "expects key=v1,v2"), (["alpha=1", "alpha=2"], "given twice"),
                           (["seed=0.5"], "comma-separated numbers"), (["alpha=x"], "comma-separated numbers")):
        with pytest.raises(ConfigError, match=message):
            parse_grid(items)


SHARDED = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import jax
    from jaxphysvae.sweep import sweep
    from tests.helpers import CLI_SMALL, pendulum_splits, small_config
    splits = pendulum_splits()
    base = dict(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0)
    grid = {{"alpha": [1e-2, 1.0], "seed": [0, 1]}}
    out = {{}}
    for name, devices in (("sharded", jax.devices()), ("single", jax.devices()[:1])):
        r = sweep(small_config(epochs=1), base, grid, None, devices=devices, progress=False, splits=splits)
        out[name] = [m["test"]["sse_per_seq"] for m in r["members"]]
    out["devices"] = len(jax.devices())
    from jaxphysvae.config import HParams
    from jaxphysvae.fit import fit
    import tempfile
    from jaxphysvae.runs import compiled
    for name, shards in (("data_parallel", 2), ("one_device", 1)):
        config = small_config(epochs=3, batch_shards=shards)
        r = fit(config, HParams.create(**base), tempfile.mkdtemp(), seed=3, progress=False, splits=splits)
        out[name] = [r["test"][k] for k in ("mae", "rmse", "sse_per_seq")] + [r["valid"]["sse_per_seq"]]
        out[name + "_compilations"] = compiled(config, splits)[1].train_epoch.cache_size()
    # evaluation split over the devices, in batches of 7 (padded to 8 for two devices), equals one device's; with
    # and without physics latents
    from jaxphysvae.train import evaluate
    hparams = HParams.create(**base)
    out["evaluate_one"], out["evaluate_split"] = [], []
    for changes in ({{}}, {{"use_physics": False, "dim_z_phy": 0, "unmixer": "none"}}):
        fns_one, fns_split = (compiled(small_config(batch_shards=d, **changes), splits)[1] for d in (1, 2))
        params = fns_one.init(jax.random.key(0), hparams).params
        for name, fns in (("evaluate_one", fns_one), ("evaluate_split", fns_split)):
            metrics, per = evaluate(fns, fns.replicate(params), splits["test"], hparams, 7)
            out[name] += [metrics["sse_per_seq"], metrics["mae"]] + per["sq_err"].tolist()
    print(json.dumps(out))
""")


def test_sharded_sweep_equals_unsharded_on_two_host_devices():
    flags = host_device_flags(os.environ.get("XLA_FLAGS", ""), 2)  # conftest's flags kept
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SHARDED.format(root=str(ROOT))], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2
    np.testing.assert_allclose(out["sharded"], out["single"], rtol=1e-5)  # 4 members, 2 per device
    # one run whose batches are split over both devices equals the same run on one device
    np.testing.assert_allclose(out["data_parallel"], out["one_device"], rtol=1e-4)
    assert out["data_parallel_compilations"] == out["one_device_compilations"] == 1  # no epoch compiles again
    np.testing.assert_allclose(out["evaluate_split"], out["evaluate_one"], rtol=1e-5)


def test_data_parallel_configuration_errors(tmp_path):
    with pytest.raises(ConfigError, match="needs 2 devices, found 1.*xla_force_host_platform_device_count=2"):
        fit(small_config(epochs=1, batch_shards=2), HParams.create(**BASE), tmp_path, progress=False,
            splits=pendulum_splits())
    with pytest.raises(ConfigError, match="multiple of batch_shards"):
        small_config(batch_size=9, batch_shards=2)
    with pytest.raises(ConfigError, match="'batch' attention context couples"):
        small_config(batch_shards=2, attention_aux2="batch")
    with pytest.raises(ConfigError, match="a sweep shards its members"):
        sweep(small_config(batch_shards=2), BASE, {"alpha": [1e-2]}, None, progress=False, splits=pendulum_splits())


def test_cli_sweep(tmp_path, capsys):
    args = ["sweep", "--preset", "pendulum-phys-vae", "--grid", "alpha=0.01,0.1", "--grid", "seed=0,1", "--epochs",
            "1", "--no-progress", "--out", str(tmp_path), *CLI_SMALL]
    assert main(args) == 0
    assert "4 members, 1 epochs" in capsys.readouterr().out
    # a member is a run for predict: SWEEP_DIR:M
    assert main(["predict", f"{tmp_path}:3", "--samples", "2"]) == 0
    written = np.load(tmp_path / "predict_member3_test.npz")
    *_, model, _, params, splits, row = load_member(tmp_path, 3)
    assert (row["alpha"], row["seed"]) == (0.1, 1)
    np.testing.assert_array_equal(written["x_PAB"], predict(model, params, splits["test"].x, samples=2)["x_PAB"])
    assert main(["predict", str(tmp_path)]) == 2
    assert "is a sweep: name one of its members" in capsys.readouterr().err
    # eval of a member: the test metrics its sweep recorded, into the sweep directory under the member's name
    assert main(["eval", f"{tmp_path}:3"]) == 0
    evaluated = json.loads((tmp_path / "eval_member3_test_samples0.json").read_text())
    recorded = json.loads((tmp_path / "sweep.json").read_text())["members"][3]["test"]
    assert evaluated["mae"] == pytest.approx(recorded["mae"], rel=1e-5)
    assert evaluated["sse_per_seq"] == pytest.approx(recorded["sse_per_seq"], rel=1e-5)
    assert main(["eval", str(tmp_path)]) == 2
    assert "is a sweep: name one of its members" in capsys.readouterr().err
    assert main(["predict", f"{tmp_path}:3", "--refine-steps", "4", "--refine-lr", "0.02"]) == 0
    fitted = refine(model, params, splits["test"].x, steps=4, lr=0.02)
    written = np.load(tmp_path / "predict_member3_test.npz")
    for key in ("x_PAB", "z_aux2", "s0", "sse"):
        np.testing.assert_allclose(written[f"fitted_{key}"], fitted[key], rtol=1e-5, atol=1e-7)
    assert "code fitted (4 adam steps)" in capsys.readouterr().out
    assert main(["predict", f"{tmp_path}:3", "--refine-steps", "3", "--refine-method", "gauss-newton"]) == 0
    fitted = refine(model, params, splits["test"].x, steps=3, method="gauss-newton")
    written = np.load(tmp_path / "predict_member3_test.npz")
    for key in ("x_PAB", "z_aux2", "s0", "sse"):
        np.testing.assert_allclose(written[f"fitted_{key}"], fitted[key], rtol=1e-5, atol=1e-7)
    assert "code fitted (3 gauss-newton steps)" in capsys.readouterr().out
    assert main(["predict", f"{tmp_path}:3", "--refine-steps", "3", "--refine-method", "gauss-newton",
                 "--refine-parts", "s0"]) == 0
    fitted = refine(model, params, splits["test"].x, steps=3, method="gauss-newton", parts=("s0",))
    written = np.load(tmp_path / "predict_member3_test.npz")
    for key in ("x_PAB", "z_aux2", "s0", "sse"):
        np.testing.assert_allclose(written[f"fitted_{key}"], fitted[key], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(written["fitted_z_aux2"], written["z_aux2_mean"])
    assert "code fitted (3 gauss-newton steps of s0)" in capsys.readouterr().out
    assert REFINE_METHODS == METHODS and REFINE_PARTS == PARTS  # the CLI's, written out to keep --help free of JAX
    assert main(["predict", f"{tmp_path}:3", "--refine-steps", "-1"]) == 2
    assert main(["predict", f"{tmp_path}:3", "--refine-steps", "3", "--refine-parts", "s0,q0"]) == 2
    assert "unknown: 'q0'" in capsys.readouterr().err
    # a sweep stopped before its end (its state saved, no sweep.json yet): refused by name, however it is loaded
    unfinished = tmp_path / "unfinished"
    shutil.copytree(tmp_path, unfinished, ignore=shutil.ignore_patterns("sweep.json", "*.npz", "unfinished"))
    holds = sorted(os.listdir(unfinished))
    refused = re.escape(str(unfinished)) + " is an unfinished sweep .* with --resume"
    for path in (f"{unfinished}:0", str(unfinished)):
        with pytest.raises(ConfigError, match=refused):
            load_any(path)
    with pytest.raises(ConfigError, match=refused):
        load_member(unfinished, 0)
    capsys.readouterr()
    assert main(["predict", f"{unfinished}:0"]) == 2
    assert "is an unfinished sweep" in capsys.readouterr().err
    assert sorted(os.listdir(unfinished)) == holds  # no predict_member0_*.npz written into it
    # a run directory that does not exist: an error, and predict creates nothing (not even the directory)
    assert main(["predict", str(tmp_path / "missing")]) == 2
    assert f"{tmp_path / 'missing'}: not a run directory (no config.json)" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()
    assert main(["sweep", "--preset", "pendulum-phys-vae", "--grid", "alpha=a,b"]) == 2
    assert "expected comma-separated numbers" in capsys.readouterr().err
