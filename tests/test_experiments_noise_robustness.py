"""experiments/noise_robustness.py: a sweep's members are the seeds, the clean error is each member's own test error,
and the feature-noise trend is called only beyond the seeds' spread; --train sweeps of one model pool their seeds."""

import json
from pathlib import Path

import numpy as np
import pytest

from experiments import noise_robustness
from experiments.sweeps import preset_configuration
from jaxphysvae.errors import ConfigError
from jaxphysvae.sweep import sweep
from tests.helpers import small_config


def test_a_sweep_is_one_model_over_its_seeds(tmp_path):
    config = small_config(epochs=2, n_train=32, n_valid=16, n_test=16)  # generated pendulum data, loaded again
    result = sweep(config, dict(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0), {"seed": [0, 1]},
                   tmp_path / "sweep", progress=False, preset="pendulum-phys-vae")
    name, paths, seeds = noise_robustness.members(str(tmp_path / "sweep"))
    assert name.startswith("pendulum-phys-vae, ") and "x_lnvar=-4" in name  # the preset and what differs
    assert paths == [f"{tmp_path / 'sweep'}:0", f"{tmp_path / 'sweep'}:1"] and seeds == [0, 1]
    row = noise_robustness.model_curves(str(tmp_path / "sweep"), levels=(0.0, 0.2), kinds=("gaussian", "feature"))
    clean = [m["test"]["mae"] for m in result["members"]]
    for kind in ("gaussian", "feature"):
        assert row["curves"][kind][0]["per_seed"] == pytest.approx(clean, rel=1e-5)  # each seed is its member
        noisy = row["curves"][kind][1]
        assert noisy["mae"] == pytest.approx(np.mean(noisy["per_seed"]))
        assert noisy["mae_std"] == pytest.approx(np.std(noisy["per_seed"]))
    assert row["seeds"] == 2 and row["seed_ids"] == [0, 1] and row["feature_noise_trend"] in ("falls", "flat", "rises")


def test_the_feature_trend_needs_a_change_beyond_the_seeds_spread():
    point = lambda mae, std=0.001: {"mae": mae, "mae_std": std}
    assert noise_robustness.feature_trend([point(0.010), point(0.0085)]) == "falls"
    assert noise_robustness.feature_trend([point(0.010), point(0.0095)]) == "flat"
    assert noise_robustness.feature_trend([point(0.010), point(0.012)]) == "rises"
    assert noise_robustness.feature_trend(None) is None


def test_the_command_refuses_a_directory_without_results(tmp_path, capsys):
    with pytest.raises(SystemExit):
        noise_robustness.main([str(tmp_path)])
    assert "neither a finished sweep" in capsys.readouterr().err


def test_the_table_states_the_trend(tmp_path):
    curve = [{"level": lv, "mae": 0.01 + lv / 10, "mae_std": 0.0001, "per_seed": [0.01 + lv / 10]}
             for lv in noise_robustness.LEVELS]
    results = [{"model": "m", "seeds": 1, "curves": {k: curve for k in noise_robustness.KINDS},
                "feature_noise_trend": noise_robustness.feature_trend(curve)}]
    text = noise_robustness.markdown(results)
    assert "| m | 1 | feature | 0.0100 +- 0.0001 | 0.0150 +- 0.0001 |" in text and "m rises" in text
    noise_robustness.figure(results, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
    json.dumps(results)


def test_the_table_and_figure_keep_the_kinds_given(tmp_path, capsys):
    curve = [{"level": lv, "mae": 0.01 - lv / 100, "mae_std": 0.0, "per_seed": [0.01 - lv / 100]}
             for lv in noise_robustness.LEVELS]
    results = [{"model": "m", "seeds": 1, "curves": {"feature": curve},
                "feature_noise_trend": noise_robustness.feature_trend(curve)}]
    text = noise_robustness.markdown(results)
    assert "| m | 1 | feature | 0.0100 +- 0.0000 |" in text and "0.0075 +- 0.0000 |\n" in text
    assert "gaussian" not in text and "m falls" in text
    noise_robustness.figure(results, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0
    with pytest.raises(SystemExit):
        noise_robustness.main(["--train", "locomotion-nf", "--kinds", "feature,salt"])
    assert "salt: not a noise kind" in capsys.readouterr().err


def test_a_preset_trained_with_each_noise_is_evaluated_with_it(tmp_path):
    from jaxphysvae.presets import TOY_WIDTHS
    changes = {**TOY_WIDTHS, "batch_size": 8, "eval_batch_size": 16, "n_train": 32, "n_valid": 16, "n_test": 16}
    row = noise_robustness.trained_curves("pendulum-phys-vae", [0], tmp_path, epochs=1, levels=(0.0, 0.3),
                                          kinds=("gaussian",), changes=changes, progress=False)
    result = json.loads((tmp_path / "pendulum-phys-vae" / "gaussian" / "sweep.json").read_text())
    assert [m["noise"] for m in result["members"]] == [0.0, 0.3]
    clean, noisy = row["curves"]["gaussian"]
    assert clean["per_seed"] == pytest.approx([result["members"][0]["test"]["mae"]], rel=1e-5)  # no noise: its row
    # the member trained at 0.3, evaluated with Gaussian noise of 0.3 (its row's test error is without noise)
    alone = noise_robustness.seed_curves(f"{tmp_path / 'pendulum-phys-vae' / 'gaussian'}:1", (0.0, 0.3),
                                         ("gaussian",))["gaussian"]
    assert alone[0] == pytest.approx(result["members"][1]["test"]["mae"], rel=1e-5)
    assert noisy["per_seed"] == [alone[1]] and alone[1] != alone[0]
    assert noise_robustness.trained_with_noise(str(tmp_path / "pendulum-phys-vae" / "gaussian"))

    # seed 1 trained in another call, elsewhere: the two sweeps given as directories pool into one row
    more = noise_robustness.trained_curves("pendulum-phys-vae", [1], tmp_path / "more", epochs=1, levels=(0.0, 0.3),
                                           kinds=("gaussian",), changes=changes, progress=False)
    sweeps = [str(tmp_path / d / "pendulum-phys-vae" / "gaussian") for d in (".", "more")]
    (pooled,) = noise_robustness.pooled_trained_curves(sweeps, levels=(0.0, 0.3))
    assert pooled["seeds"] == 2 and pooled["seed_ids"] == [0, 1] and pooled["run"] == ", ".join(sweeps)
    assert pooled["model"].startswith("pendulum-phys-vae, trained with the noise it is evaluated with, ")
    other = json.loads((tmp_path / "more" / "pendulum-phys-vae" / "gaussian" / "sweep.json").read_text())
    assert [m["seed"] for m in other["members"]] == [1, 1]
    clean, noisy = pooled["curves"]["gaussian"]
    assert clean["per_seed"] == pytest.approx([result["members"][0]["test"]["mae"],
                                               other["members"][0]["test"]["mae"]], rel=1e-5)
    assert noisy["per_seed"] == [alone[1], more["curves"]["gaussian"][1]["per_seed"][0]]
    assert noisy["mae"] == pytest.approx((alone[1] + more["curves"]["gaussian"][1]["per_seed"][0]) / 2)
    # the two calls' tables, without their sweeps, pool to the same row
    tables = [tmp_path / "seed0.json", tmp_path / "seed1.json"]
    for table, r in zip(tables, (row, more)):
        table.write_text(json.dumps([r]))
    (merged,) = noise_robustness.merged_results([str(t) for t in tables])
    assert merged["curves"] == pooled["curves"] and merged["seed_ids"] == [0, 1] and merged["model"] == pooled["model"]
    with pytest.raises(ConfigError, match="seed 0 of gaussian noise is also in"):
        noise_robustness.merged_results([str(tables[0]), str(tables[0])])
    with pytest.raises(SystemExit):
        noise_robustness.main([str(tmp_path / "none.json")])
    with pytest.raises(ConfigError, match="seed 0 at gaussian noise 0 is also in another"):
        noise_robustness.pooled_trained_curves([sweeps[0], sweeps[0]], levels=(0.0, 0.3))
    with pytest.raises(ConfigError, match=r"gaussian noise 0.5 has seeds \[\], the model has \[0\]"):
        noise_robustness.pooled_trained_curves(sweeps[:1], levels=(0.0, 0.3, 0.5))
    with pytest.raises(ConfigError, match="none trained with the kinds asked for \\(feature\\)"):
        noise_robustness.main([sweeps[0], "--kinds", "feature", "--out", str(tmp_path / "table")])

    # another kind, later, beside the finished Gaussian sweep: its clean model (level 0, trained without noise) is
    # that sweep's, not trained again, and serves this kind's level 0
    drop = noise_robustness.trained_curves("pendulum-phys-vae", [0], tmp_path, epochs=1, levels=(0.0, 0.3),
                                           kinds=("dropout",), changes=changes, progress=False)
    dropped = json.loads((tmp_path / "pendulum-phys-vae" / "dropout" / "sweep.json").read_text())
    assert [m["noise"] for m in dropped["members"]] == [0.3]
    assert drop["run"] == f"{tmp_path / 'pendulum-phys-vae' / 'dropout'}, {sweeps[0]}"
    assert drop["curves"]["dropout"][0]["per_seed"] == pytest.approx([result["members"][0]["test"]["mae"]], rel=1e-5)
    assert drop["curves"]["dropout"][1]["per_seed"] == noise_robustness.seed_curves(
        f"{tmp_path / 'pendulum-phys-vae' / 'dropout'}:0", (0.3,), ("dropout",))["dropout"]
    with pytest.raises(ConfigError, match=r"dropout noise 0 has seeds \[\], the model has \[0\] .* or give a sweep "
                                          "with their clean members"):
        noise_robustness.pooled_trained_curves([str(tmp_path / "pendulum-phys-vae" / "dropout")], levels=(0.0, 0.3))
    with pytest.raises(ConfigError, match=r"trained with dropout noise, not one of the kinds asked for \(gaussian\), "
                                          "and without a clean member"):
        noise_robustness.pooled_trained_curves([sweeps[0], str(tmp_path / "pendulum-phys-vae" / "dropout")],
                                               levels=(0.0, 0.3), kinds=("gaussian",))
    # a clean model is shared only by the same configuration, hyper-parameters and seeds
    find = lambda sets=(), epochs=1, seeds=(0,): noise_robustness.clean_sweep(
        tmp_path / "pendulum-phys-vae", *preset_configuration("pendulum-phys-vae", changes, sets, epochs), list(seeds))
    assert find() == tmp_path / "pendulum-phys-vae" / "gaussian"
    assert find(epochs=2) is None and find(sets=("alpha=0.5",)) is None and find(seeds=(0, 1)) is None


def test_quick_train_runs_the_command_end_to_end(tmp_path, capsys):
    sweeps, out = tmp_path / "sweeps", tmp_path / "table"
    (row,) = noise_robustness.main(["--train", "locomotion-phys-vae", "--quick", "--kinds", "feature", "--seeds", "0",
                                    "--sweeps", str(sweeps), "--out", str(out)])
    sweep = json.loads((sweeps / "locomotion-phys-vae" / "feature" / "sweep.json").read_text())
    assert sweep["epochs"] == noise_robustness.QUICK_EPOCHS and sweep["config"]["noise"] == "feature"
    assert sweep["config"]["feat_dim"] == 16  # the toy widths
    assert [m["noise"] for m in sweep["members"]] == pytest.approx(noise_robustness.LEVELS)
    assert [p["level"] for p in row["curves"]["feature"]] == list(noise_robustness.LEVELS)
    clean = row["curves"]["feature"][0]["per_seed"]  # the member trained and evaluated without noise: its own row
    assert clean == pytest.approx([sweep["members"][0]["test"]["mae"]], rel=1e-5)
    assert json.loads(out.with_suffix(".json").read_text()) == json.loads(json.dumps([row]))
    with pytest.raises(SystemExit):
        noise_robustness.main([str(sweeps / "locomotion-phys-vae" / "feature"), "--quick"])
    assert "--quick makes --train's models small" in capsys.readouterr().err


def _table(path, model, seeds, curves):
    """An earlier call's table (OUT.json) of one row: `curves` {kind: {level: [MAE per seed]}}."""
    points = {kind: [{"level": lv, "mae": float(np.mean(v)), "mae_std": float(np.std(v)), "per_seed": v}
                     for lv, v in by_level.items()] for kind, by_level in curves.items()}
    path.write_text(json.dumps([{"model": model, "run": "r", "seeds": len(seeds), "seed_ids": seeds,
                                 "curves": points, "feature_noise_trend": None}]))
    return str(path)


def test_tables_of_separate_calls_pool_their_seeds(tmp_path):
    a = _table(tmp_path / "a.json", "m", [0], {"dropout": {0.0: [0.010], 0.2: [0.013]},
                                                "impulse": {0.0: [0.010], 0.2: [0.040]}})
    b = _table(tmp_path / "b.json", "m", [2, 1], {"dropout": {0.0: [0.012, 0.011], 0.2: [0.016, 0.014]}})
    c = _table(tmp_path / "c.json", "other", [5], {"feature": {0.0: [0.02], 0.2: [0.01]}})
    rows = noise_robustness.main([a, b, c, "--out", str(tmp_path / "pooled")])
    by = {(r["model"], tuple(r["curves"])): r for r in rows}
    assert set(by) == {("m", ("dropout",)), ("m", ("impulse",)), ("other", ("feature",))}
    dropout = by["m", ("dropout",)]  # seeds 0, 1, 2 from two tables: each seed's errors kept, in seed order
    assert dropout["seeds"] == 3 and dropout["seed_ids"] == [0, 1, 2] and dropout["run"] == f"{a}, {b}"
    assert [p["per_seed"] for p in dropout["curves"]["dropout"]] == [[0.010, 0.011, 0.012], [0.013, 0.014, 0.016]]
    assert dropout["curves"]["dropout"][1]["mae"] == pytest.approx(0.043 / 3)
    assert dropout["curves"]["dropout"][1]["mae_std"] == pytest.approx(np.sqrt(((0.013 - 0.043 / 3) ** 2 + (
        0.014 - 0.043 / 3) ** 2 + (0.016 - 0.043 / 3) ** 2) / 3))
    impulse = by["m", ("impulse",)]  # one seed only: a row of its own, not averaged with the dropout seeds
    assert impulse["seed_ids"] == [0] and impulse["curves"]["impulse"][1]["per_seed"] == [0.040]
    assert by["other", ("feature",)]["feature_noise_trend"] == "falls"
    text = (tmp_path / "pooled.md").read_text()
    assert "| m | 3 | dropout | 0.0110 +- 0.0008 | 0.0143 +- 0.0012 |" in text
    assert "| m | 1 | impulse | 0.0100 +- 0.0000 | 0.0400 +- 0.0000 |" in text
    assert [r["model"] for r in noise_robustness.merged_results([a, b], kinds=("impulse",))] == ["m"]
    with pytest.raises(ConfigError, match=r"no rows with the kinds asked for \(feature\)"):
        noise_robustness.merged_results([a, b], kinds=("feature",))

    other_levels = _table(tmp_path / "d.json", "m", [3], {"dropout": {0.0: [0.01], 0.1: [0.02]}})
    with pytest.raises(ConfigError, match=r"d.json: 'm', dropout noise at levels \[0.0, 0.1\], other tables given "
                                          r"have it at \[0.0, 0.2\]"):
        noise_robustness.merged_results([a, other_levels])
    old = tmp_path / "old.json"
    old.write_text(json.dumps([{"model": "m", "curves": {}}]))
    with pytest.raises(ConfigError, match="old.json: row 'm' does not record its seeds"):
        noise_robustness.merged_results([str(old)])
    short = json.loads(Path(b).read_text())
    short[0]["curves"]["dropout"][1]["per_seed"] = [0.016]  # seeds 2 and 1, one error
    (tmp_path / "short.json").write_text(json.dumps(short))
    with pytest.raises(ConfigError, match=r"short.json: 'm', dropout noise: each level needs one error per seed"):
        noise_robustness.merged_results([str(tmp_path / "short.json")])
    (tmp_path / "bad.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ConfigError, match=r"bad.json: noise robustness table is corrupt \(expected a JSON list\)"):
        noise_robustness.merged_results([str(tmp_path / "bad.json")])
    (tmp_path / "rows.json").write_text(json.dumps([{"model": "m"}]))
    with pytest.raises(ConfigError, match="rows.json: not a table of this command"):
        noise_robustness.merged_results([str(tmp_path / "rows.json")])
    (tmp_path / "cut.json").write_text("[{")
    with pytest.raises(ConfigError, match="cut.json"):
        noise_robustness.merged_results([str(tmp_path / "cut.json")])
