"""experiments/unseen_subjects.py: folds keep each person in one role, the baselines are the fold's own, and a quick
run trains every fold and writes the table."""

import json

import numpy as np
import pytest

from experiments import locomotion, unseen_subjects, variants
from jaxphysvae.errors import ConfigError, DataError
from jaxphysvae.refine import refine
from jaxphysvae.sweep import load_member
from tests.helpers import fake_strides


@pytest.mark.parametrize("by", ["subject", "stride"])
def test_every_unit_is_tested_once_and_never_in_two_roles(by):
    strides = fake_strides()
    folds = unseen_subjects.fold_splits(strides, 3, by=by, seed=1)
    unit = (lambda s: s.covariates["subject"]) if by == "subject" else (lambda s: s.x[:, 0, 0])  # a stride's id
    tested = np.concatenate([unit(f["test"]) for f in folds])
    assert sorted(tested) == sorted(unit(strides))  # every stride is in exactly one test fold
    for fold in folds:
        roles = [set(unit(fold[split]).tolist()) for split in ("train", "valid", "test")]
        assert all(roles) and not (roles[0] & roles[1] or roles[0] & roles[2] or roles[1] & roles[2])
        assert sum(fold[s].num_sequences for s in fold) == strides.num_sequences
    if by == "subject":  # 6 subjects in 3 folds: 2 test, then 1 valid (20 % of 4, at least 1) and 3 train subjects
        assert [len(set(f["test"].covariates["subject"])) for f in folds] == [2, 2, 2]
        assert [len(set(f["valid"].covariates["subject"])) for f in folds] == [1, 1, 1]


@pytest.mark.parametrize("subjects, folds, by", [(6, 1, "subject"), (6, 7, "subject"), (3, 2, "subject"),
                                                 (6, 3, "joint")])
def test_impossible_folds_are_refused(subjects, folds, by):
    """One fold, more folds than subjects, and 3 subjects in 2 folds (one left for valid and train) cannot be made."""
    with pytest.raises(DataError, match="fold"):
        unseen_subjects.fold_splits(fake_strides(subjects), folds, by=by)


def test_baselines_are_fitted_on_the_fold_s_own_training_strides():
    fold = unseen_subjects.fold_splits(fake_strides(), 3)[0]
    rows = {r["model"]: r for r in unseen_subjects.fold_baselines(fold)}
    train, test = fold["train"].x, fold["test"].x
    assert rows["mean training stride"]["mae"] == pytest.approx(np.abs(test - train.mean(0)).mean())
    assert rows["mean training stride"]["valid_mae"] == pytest.approx(np.abs(fold["valid"].x - train.mean(0)).mean())
    # PCA with k components: the test strides projected on the top-k right singular vectors of the centred train
    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    centred = flat_train - flat_train.mean(0)
    basis = np.linalg.eigh(centred.T @ centred)[1][:, ::-1][:, :5]
    recon = (flat_test - flat_train.mean(0)) @ basis @ basis.T + flat_train.mean(0)
    assert rows["PCA, 5 components (fitted on train)"]["mae"] == pytest.approx(np.abs(recon - flat_test).mean(),
                                                                               rel=1e-6)


def test_quick_run_trains_every_fold_and_writes_the_table(tmp_path):
    strides = fake_strides()
    result = unseen_subjects.run(strides, tmp_path, 2, "subject", 0, ["locomotion-phys-vae"], [0], 2, quick=True)
    model = next(r for r in result["rows"] if r["model"] == "locomotion-phys-vae")
    per_fold = [json.loads((tmp_path / "subject" / "locomotion-phys-vae" / f"fold{k}" / "sweep.json").read_text())
                for k in range(2)]
    maes = [f["members"][0]["test"]["mae"] for f in per_fold]
    assert model["mae"] == pytest.approx(np.mean(maes)) and model["mae_std"] == pytest.approx(np.std(maes))
    assert model["seconds"] == pytest.approx(sum(f["seconds"] for f in per_fold))
    assert model["code_size"] == 2 + 15 + 2 * 3 and model["epochs"] == 2 and model["diverged"] == 0
    assert model["seed_ids"] == [[0], [0]]  # the seeds per fold, as experiments.pool_seeds reads them
    assert [f["members"][0]["test"] for f in per_fold] != [None, None]
    # how much the best validation error fell over the last fifth of the 2 epochs: from epoch 1's to the best
    for k in range(2):
        log = (tmp_path / "subject" / "locomotion-phys-vae" / f"fold{k}" / "metrics.jsonl").read_text()
        first, second = (json.loads(line)["valid_sse_per_seq"][0] for line in log.splitlines())
        assert model["folds"][k]["tail_drop"] == pytest.approx((first - min(first, second)) / first)
    assert model["tail_drop"] == pytest.approx(np.mean([f["tail_drop"] for f in model["folds"]]))
    people = result["subjects"]
    assert all(not set(f["test"]) & set(f["train"] + f["valid"]) for f in people)
    assert sorted(people[0]["test"] + people[1]["test"]) == sorted(set(strides.covariates["subject"].astype(int)))
    text = unseen_subjects.markdown(result)
    falling = f"{100 * model['tail_drop']:.1f} +- {100 * model['tail_drop_std']:.1f} %"
    assert f"| locomotion-phys-vae | 23 | 2 | 1 | 0 | {model['seconds']:.0f} | {falling} |" in text
    assert "| PCA, 21 components (fitted on train) | 21 |" in text
    unseen_subjects.figure(result, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 0


def test_set_and_only_folds_change_the_sweeps_and_label_the_table(tmp_path):
    sets = ("dim_z_aux2=3", "kl_weight=2.5")
    result = unseen_subjects.run(fake_strides(), tmp_path, 2, "subject", 0, ["locomotion-phys-vae"], [0], 1,
                                 quick=True, sets=sets, only=[1], refine_steps=2,
                                 refine_method="gauss-newton")
    row = next(r for r in result["rows"] if "epochs" in r)
    assert row["model"] == "locomotion-phys-vae (dim_z_aux2=3, kl_weight=2.5)"
    assert row["code_size"] == 2 + 3 + 2 * 3  # z_P, the changed z_A2, the learned initial state
    # PCA at that code size beside the model, fitted on the fold's own training strides
    pca = next(r for r in result["rows"] if r["model"] == "PCA, 11 components (fitted on train)")
    split = unseen_subjects.fold_splits(fake_strides(), 2)[1]
    flat_train, flat_test = (split[k].x.reshape(split[k].num_sequences, -1) for k in ("train", "test"))
    mean, vt = flat_train.mean(0), np.linalg.svd(flat_train - flat_train.mean(0), full_matrices=False)[2][:11]
    assert pca["code_size"] == 11 and pca["mae"] == pytest.approx(
        np.abs((flat_test - mean) @ vt.T @ vt + mean - flat_test).mean(), rel=1e-5)
    sweep_dir = tmp_path / "subject" / "locomotion-phys-vae+dim_z_aux2=3+kl_weight=2.5"
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["fold1"] and result["fold_ids"] == [1]
    stored = json.loads((sweep_dir / "fold1" / "sweep_config.json").read_text())
    assert stored["config"]["dim_z_aux2"] == 3 and stored["members"][0]["kl_weight"] == 2.5
    member = json.loads((sweep_dir / "fold1" / "sweep.json").read_text())["members"][0]
    assert row["valid_mae"] == pytest.approx(member["valid"]["mae"]) and row["valid_mae_std"] == 0.0
    # the fitted code's errors: the fold's own valid and test strides, through the member's best parameters
    datasets = {name: split.dataset(name) for name, split in unseen_subjects.fold_splits(fake_strides(), 2)[1].items()}
    _, _, model, _, params, _, _ = load_member(sweep_dir / "fold1", 0, splits=datasets)
    for split, key in (("valid", "fitted_valid_mae"), ("test", "fitted_mae")):
        x = datasets[split].x
        fitted = refine(model, params, x, steps=2, method="gauss-newton")["x_PAB"]
        assert row[key] == pytest.approx(np.abs(fitted - x).mean())
    assert all("fitted_mae" not in r for r in result["rows"] if "epochs" not in r)
    assert "Locomotion, fold 1 of 2 by subject" in unseen_subjects.markdown(result)
    assert "a fitted code: 2 gauss-newton steps per stride from the encoder's (jaxphysvae.refine);" in (
        unseen_subjects.markdown(result))
    assert "a fitted code: 1 gauss-newton step per stride" in unseen_subjects.markdown({**result, "refine_steps": 1})
    assert "refine_parts" not in result
    # the same sweep resumed (nothing trained), its codes' initial states alone fitted
    part = unseen_subjects.run(fake_strides(), tmp_path, 2, "subject", 0, ["locomotion-phys-vae"], [0], 1,
                               quick=True, sets=sets, only=[1], refine_steps=2, refine_method="gauss-newton",
                               refine_parts=("s0",))
    part_row = next(r for r in part["rows"] if "epochs" in r)
    assert part_row["mae"] == row["mae"] and part["refine_parts"] == ["s0"]
    for split, key in (("valid", "fitted_valid_mae"), ("test", "fitted_mae")):
        x = datasets[split].x
        fitted = refine(model, params, x, steps=2, method="gauss-newton", parts=("s0",))["x_PAB"]
        assert part_row[key] == pytest.approx(np.abs(fitted - x).mean())
    assert "gauss-newton steps per stride from the encoder's (jaxphysvae.refine), fitting s0 only" in (
        unseen_subjects.markdown(part))
    assert (unseen_subjects.table_name("subject", 2, [1], sets)
            == "unseen_subjects_subject_folds1_dim_z_aux2=3+kl_weight=2.5")
    assert (unseen_subjects.table_name("subject", 2, [1], sets, refine_parts=("aux2", "s0"))
            == "unseen_subjects_subject_folds1_dim_z_aux2=3+kl_weight=2.5_fitted_aux2+s0")
    assert unseen_subjects.table_name("subject", 2, [1, 0], ()) == "unseen_subjects_subject"
    for bad in (["--set", "no_such=1"], ["--only-folds", "5"], ["--refine-parts", "s0,z"]):
        with pytest.raises(SystemExit):
            unseen_subjects.main(["--raw-dir", str(tmp_path), "--presets", "locomotion-phys-vae", *bad])


def test_a_grid_gives_a_row_per_combination_and_one_chosen_on_each_fold_s_validation_people(tmp_path, capsys):
    grid = {"kl_weight": [1.0, 2.5], "retime": [0.0, 0.05]}
    result = unseen_subjects.run(fake_strides(), tmp_path, 2, "subject", 0, ["locomotion-phys-vae"], [0, 1], 2,
                                 quick=True, sets=("dim_z_aux2=3",), grid=grid)
    sweep_dir = tmp_path / "subject" / "locomotion-phys-vae+dim_z_aux2=3+kl_weight=1,2.5+retime=0,0.05"
    swept = [json.loads((sweep_dir / f"fold{k}" / "sweep.json").read_text())["members"] for k in range(2)]
    assert [len(members) for members in swept] == [8, 8]  # 2 seeds x 4 combinations, one sweep per fold
    rows = {r["model"]: r for r in result["rows"] if "epochs" in r}
    assert list(rows) == [f"locomotion-phys-vae (dim_z_aux2=3, kl_weight={k}, retime={r})"
                          for k in ("1", "2.5") for r in ("0", "0.05")] + [
        "locomotion-phys-vae (dim_z_aux2=3, kl_weight/retime chosen on valid)"]
    for kl, retime in [(1.0, 0.0), (1.0, 0.05), (2.5, 0.0), (2.5, 0.05)]:
        row = rows[f"locomotion-phys-vae (dim_z_aux2=3, kl_weight={kl:g}, retime={retime:g})"]
        # each fold's figure: the mean over the seeds of the members trained with these values, found by their values
        mine = [[m for m in members if np.isclose(m["kl_weight"], kl) and np.isclose(m["retime"], retime)]
                for members in swept]
        assert [sorted(m["seed"] for m in ms) for ms in mine] == [[0, 1], [0, 1]]
        for f, ms in enumerate(mine):
            assert row["folds"][f]["mae"] == pytest.approx(np.mean([m["test"]["mae"] for m in ms]))
            assert row["folds"][f]["valid_mae"] == pytest.approx(np.mean([m["valid"]["mae"] for m in ms]))
            # the learning curve of these members only: their mean validation error at epochs 1 and 2
            ids = [i for i, m in enumerate(swept[f]) if m in ms]
            log = [json.loads(line)["valid_sse_per_seq"] for line in (sweep_dir / f"fold{f}" / "metrics.jsonl")
                   .read_text().splitlines()]
            first, second = (np.mean([epoch[i] for i in ids]) for epoch in log)
            assert row["folds"][f]["tail_drop"] == pytest.approx((first - min(first, second)) / first, rel=1e-5)
        assert row["hparams"] == {"kl_weight": kl, "retime": retime} and row["seeds"] == 2
        assert row["seed_ids"] == [[0, 1], [0, 1]]
    # the chosen row: per fold, the combination whose seeds' mean validation MAE is the lowest
    chosen = rows["locomotion-phys-vae (dim_z_aux2=3, kl_weight/retime chosen on valid)"]
    for f in range(2):
        valid = {(kl, rt): np.mean([m["valid"]["mae"] for m in swept[f]
                                    if np.isclose(m["kl_weight"], kl) and np.isclose(m["retime"], rt)])
                 for kl in (1.0, 2.5) for rt in (0.0, 0.05)}
        best = min(valid, key=valid.get)
        assert chosen["chosen"][f] == {"kl_weight": best[0], "retime": best[1]} and chosen["seed_ids"][f] == [0, 1]
        assert chosen["folds"][f]["mae"] == pytest.approx(np.mean([m["test"]["mae"] for m in swept[f] if np.isclose(
            m["kl_weight"], best[0]) and np.isclose(m["retime"], best[1])]))
    picks = ", ".join(f"{c['kl_weight']:g}/{c['retime']:g}" for c in chosen["chosen"])
    assert f"| locomotion-phys-vae (dim_z_aux2=3, kl_weight/retime chosen on valid): {picks} | 11 |" in (
        unseen_subjects.markdown(result))
    assert (unseen_subjects.table_name("subject", 2, None, ("dim_z_aux2=3",), grid)
            == "unseen_subjects_subject_dim_z_aux2=3+kl_weight=1_2.5+retime=0_0.05")
    for bad, message in ((["--grid", "seed=0,1"], "--seeds"), (["--grid", "feat_dim=8,16"], "cannot sweep 'feat_dim'"),
                         (["--grid", "retime=0.1", "--set", "retime=0.2"], "also given by --set"),
                         (["--grid", "retime=a"], "comma-separated numbers"), (["--grid", "retime="], "no values")):
        with pytest.raises(SystemExit):
            unseen_subjects.main(["--raw-dir", str(tmp_path), "--presets", "locomotion-phys-vae", *bad])
        assert message in capsys.readouterr().err


def test_a_table_of_other_presets_is_refused_before_anything_runs(tmp_path):
    # a stored table of the NF-VAE with its baselines' rows: a call for the phys-VAE under its name would drop the
    # NF-VAE's row; the same presets again (more seeds, more folds) replace it. The raw directory is empty: the
    # refusal comes before the data are read.
    out, raw_dir = tmp_path / "out", tmp_path / "raw"
    out.mkdir(), raw_dir.mkdir()
    table = {"rows": [{"model": "PCA, 23 components (fitted on train)", "code_size": 23},
                      {"model": "locomotion-nf-tuned", "code_size": 23, "seeds": 1}]}
    (out / "mine.json").write_text(json.dumps(table))
    call = ["--raw-dir", str(raw_dir), "--name", "mine", "--out", str(out)]
    with pytest.raises(ConfigError, match="mine.json holds the table of locomotion-nf-tuned; this call's is of "
                                          "locomotion-phys-vae-tuned: give --name NAME to keep both"):
        unseen_subjects.main([*call, "--presets", "locomotion-phys-vae-tuned"])
    with pytest.raises(DataError, match="raw"):  # past the check: the same preset goes on to read the data
        unseen_subjects.main([*call, "--presets", "locomotion-nf-tuned"])
    assert json.loads((out / "mine.json").read_text()) == table


@pytest.mark.parametrize("name", ["../elsewhere", "sub/table", "", ".."])
def test_a_name_with_a_directory_is_refused_before_anything_runs(tmp_path, capsys, name):
    with pytest.raises(SystemExit):
        unseen_subjects.main(["--raw-dir", str(tmp_path), "--name", name, "--out", str(tmp_path / "out")])
    assert f"argument --name: {name!r}: expected a file name without a directory" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # the locomotion and variants tables' --name is the same argparse type
    with pytest.raises(SystemExit):
        locomotion.main(["--name", name, str(tmp_path / "no_run")])
    assert f"argument --name: {name!r}: expected a file name without a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        variants.main(["--baselines-only", "--quick", "--name", name, "--out", str(tmp_path / "out")])
    assert f"argument --name: {name!r}: expected a file name without a directory" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
