"""experiments/pool_seeds.py: tables of experiments.unseen_subjects trained in pieces (seeds, folds) pool into the
table of one run with every seed, and pieces that did not measure the same thing are refused."""

import copy
import json

import numpy as np
import pytest

from experiments import pool_seeds
from jaxphysvae.errors import ConfigError

MODEL = "locomotion-phys-vae (retime=0.12)"
SUBJECTS = [{"train": [1, 2], "valid": [3], "test": [4]}, {"train": [1, 4], "valid": [3], "test": [2]}]
STRIDES = [{"train": 20, "valid": 10, "test": 10}, {"train": 21, "valid": 10, "test": 9}]


def table(fold_ids, pca_mae, model_folds, seeds, best, epochs=5000, seconds=100.0, refine_steps=200):
    """A record as experiments.unseen_subjects writes it: a PCA row and one model's row on `fold_ids`."""
    def figures(mae, valid, extra=()):
        return {"mae": mae, "rmse": 2 * mae, "sse_per_seq": 3 * mae, "valid_mae": valid, **dict(extra)}
    return {"by": "subject", "folds": 5, "split_seed": 0, "source": "22 raw files", "refine_steps": refine_steps,
            "refine_method": "adam", "fold_ids": list(fold_ids), "strides": [STRIDES[k] for k in fold_ids],
            "subjects": [SUBJECTS[k] for k in fold_ids], "seconds": seconds + 5,
            "rows": [{"model": "PCA, 23 components (fitted on train)", "code_size": 23,
                      "folds": [figures(pca_mae[k], pca_mae[k] / 2) for k in fold_ids]},
                     {"model": MODEL, "code_size": 23, "epochs": epochs, "seeds": len(seeds), "seconds": seconds,
                      "diverged": 0, "seed_ids": [list(seeds) for _ in fold_ids], "best_epoch": best,
                      "folds": [figures(*f) for f in model_folds]}]}


PCA = {0: 0.010, 1: 0.008}
# seed 0 on folds 0 and 1 in one run; seeds 1, 2 one fold at a time
SEED0 = table([0, 1], PCA, [(0.0100, 0.0090, {"tail_drop": 0.01, "fitted_mae": 0.009}),
                            (0.0080, 0.0070, {"tail_drop": 0.04, "fitted_mae": 0.007})], [0], [[4000], [4500]])
FOLD0 = table([0], PCA, [(0.0130, 0.0120, {"tail_drop": 0.00, "fitted_mae": 0.012})], [1, 2], [[3000, 3100]],
              seconds=200.0)
FOLD1 = table([1], PCA, [(0.0110, 0.0100, {"tail_drop": 0.02, "fitted_mae": 0.010})], [1, 2], [[4900, 5000]],
              seconds=300.0)


def test_pieces_pool_into_the_seed_weighted_mean_per_fold():
    result = pool_seeds.pool({"seed0.json": SEED0, "fold0.json": FOLD0, "fold1.json": FOLD1})
    assert result["fold_ids"] == [0, 1] and result["subjects"] == SUBJECTS and result["strides"] == STRIDES
    assert result["pooled_from"] == ["seed0.json", "fold0.json", "fold1.json"] and result["refine_steps"] == 200
    pca, model = result["rows"]
    assert pca["model"] == "PCA, 23 components (fitted on train)" and pca["mae"] == pytest.approx(0.009)
    assert "seeds" not in pca
    # each fold: (seed 0's figure + 2 x the figure of seeds 1 and 2) / 3, by hand
    fold0 = {"mae": 0.012, "rmse": 0.024, "sse_per_seq": 0.036, "valid_mae": 0.011, "tail_drop": 0.01 / 3,
             "fitted_mae": 0.011}
    fold1 = {"mae": 0.010, "rmse": 0.020, "sse_per_seq": 0.030, "valid_mae": 0.009, "tail_drop": 0.08 / 3,
             "fitted_mae": 0.009}
    for got, want in zip(model["folds"], (fold0, fold1)):
        assert got == pytest.approx(want)
    assert model["mae"] == pytest.approx(0.011) and model["mae_std"] == pytest.approx(0.001)
    assert model["fitted_mae"] == pytest.approx(0.010) and model["tail_drop"] == pytest.approx(0.015)
    assert model["seed_ids"] == [[0, 1, 2], [0, 1, 2]] and model["seeds"] == 3
    assert model["best_epoch"] == [[4000, 3000, 3100], [4500, 4900, 5000]]
    assert model["seconds"] == 600.0 and model["epochs"] == 5000 and result["seconds"] == 615.0
    text = pool_seeds.markdown(result)
    assert f"| {MODEL} | 23 | 5000 | 3 | 0 | 600 | 1.5 +- 1.2 % | 0.0100 +- 0.0010 | 0.0110 +- 0.0010 |" in text
    assert "Pooled (experiments.pool_seeds) from: seed0.json, fold0.json, fold1.json." in text


def changed(record, change):
    record = copy.deepcopy(record)
    change(record)
    return record


def model_row(record):
    return record["rows"][1]


@pytest.mark.parametrize("other, message", [
    (changed(FOLD0, lambda t: model_row(t)["seed_ids"].__setitem__(0, [0, 1])), r"seed\(s\) \[0\] on fold 0"),
    (changed(FOLD0, lambda t: t["rows"][0]["folds"][0].__setitem__("mae", 0.0101)), "baseline .* differs on fold 0"),
    (changed(FOLD0, lambda t: model_row(t).__setitem__("epochs", 3000)), "trained 3000 epochs, another piece 5000"),
    (changed(FOLD0, lambda t: t.__setitem__("refine_steps", 0)), "refine_steps 0 differs"),
    (changed(FOLD0, lambda t: t.__setitem__("refine_parts", ["s0"])), r"refine_parts \['s0'\] differs"),
    (changed(FOLD0, lambda t: t.__setitem__("split_seed", 1)), "split_seed 1 differs"),
    (changed(FOLD0, lambda t: t["subjects"][0].__setitem__("test", [5])), "fold 0's people or strides differ"),
    (changed(FOLD0, lambda t: model_row(t).__setitem__("chosen", [{"retime": 0.12}])), "grid's choice"),
    (changed(FOLD0, lambda t: model_row(t).pop("seed_ids")), "does not say its seeds"),
], ids=["seed_twice", "baseline", "epochs", "refine_steps", "refine_parts", "split_seed", "people", "chosen_row",
        "no_seed_ids"])
def test_pieces_that_did_not_measure_the_same_thing_are_refused(other, message):
    with pytest.raises(ConfigError, match=message):
        pool_seeds.pool({"seed0.json": SEED0, "other.json": other})


def test_uneven_seeds_per_fold_are_counted_per_fold():
    # fold 0 has seeds 0, 1, 2; fold 1 only seed 0: each fold's figure is the mean over its own seeds
    result = pool_seeds.pool({"seed0.json": SEED0, "fold0.json": FOLD0})
    model = result["rows"][1]
    assert model["seeds"] == [3, 1] and model["seed_ids"] == [[0, 1, 2], [0]]
    assert [f["mae"] for f in model["folds"]] == pytest.approx([0.012, 0.008])
    assert f"| {MODEL} | 23 | 5000 | [3, 1] | 0 | 300 |" in pool_seeds.markdown(result)


def test_a_model_missing_on_a_fold_is_refused():
    with pytest.raises(ConfigError, match=r"'another model' has no run on fold\(s\) \[0\]"):
        pool_seeds.pool({"seed0.json": SEED0, "fold0.json": FOLD0, "fold1.json": changed(
            FOLD1, lambda t: model_row(t).__setitem__("model", "another model"))})


def test_the_command_writes_the_pooled_tables_and_refuses_bad_calls(tmp_path, capsys):
    for name, record in (("seed0.json", SEED0), ("fold0.json", FOLD0), ("fold1.json", FOLD1)):
        (tmp_path / name).write_text(json.dumps(record))
    paths = [str(tmp_path / n) for n in ("seed0.json", "fold0.json", "fold1.json")]
    result = pool_seeds.main([*paths, "--name", "pooled", "--out", str(tmp_path / "out")])
    stored = json.loads((tmp_path / "out" / "pooled.json").read_text())
    assert np.isclose(stored["rows"][1]["mae"], 0.011) and stored == json.loads(json.dumps(result))
    assert (tmp_path / "out" / "pooled.md").read_text() == pool_seeds.markdown(result)
    assert (tmp_path / "out" / "pooled.png").stat().st_size > 0
    for bad in ([paths[0], paths[0], "--name", "x"], [paths[0], "--name", "a/b"]):
        with pytest.raises(SystemExit):
            pool_seeds.main([*bad, "--out", str(tmp_path / "out")])
    (tmp_path / "broken.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(ConfigError, match="not a table of experiments.unseen_subjects"):
        pool_seeds.main([str(tmp_path / "broken.json"), "--name", "x", "--out", str(tmp_path / "out")])
