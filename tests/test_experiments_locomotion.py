"""experiments/locomotion.py: a sweep collected as one row over its seeds, and the recomputed baselines."""

import json

import numpy as np
import pytest

from experiments import locomotion


def test_a_sweep_is_one_row_of_mean_and_std_over_seeds(tmp_path):
    runs = [("completed", 10, 0, 0.011), ("completed", 12, 1, 0.013), ("diverged", 7, 3, 0.018)]
    members = [{"alpha": 0.01, "lr": 0.0003000000142, "seed": s, "status": status, "diverged_at_epoch": None,
                "best_epoch": best, "rollbacks": [{"epoch": 5}] * rollbacks, "lr_scale": 1.0,
                "valid": {"sse_per_seq": 0.1 + s}, "test": {"mae": mae, "rmse": 2 * mae, "sse_per_seq": 3 * mae}}
               for s, (status, best, rollbacks, mae) in enumerate(runs)]
    config = json.loads(json.dumps(locomotion.presets.get("locomotion-nf")[0].to_json()))
    (tmp_path / "sweep.json").write_text(json.dumps({"preset": "locomotion-nf", "members": members, "epochs": 20,
                                                     "config": config}))
    row, = locomotion.collect([tmp_path])
    maes = [0.011, 0.013, 0.018]
    assert row["model"] == "locomotion-nf" and row["seeds"] == 3 and row["best_epoch"] == [10, 12, 7]
    assert row["mae"] == pytest.approx(np.mean(maes)) and row["mae_std"] == pytest.approx(np.std(maes))
    assert row["sse_per_seq_std"] == pytest.approx(3 * np.std(maes))
    assert row["rollbacks"] == [0, 1, 3] and row["status"] == "1 of 3 diverged"
    table = locomotion.markdown([row], [])
    assert row["changes"] == {"lr": 0.0003000000142}  # what differs from the preset (float32-rounded or not)
    assert row["code_size"] == 2 + 15 + 2 * 3  # z_P, z_A2, and the learned initial (q, p) of three joints
    assert ("| **locomotion-nf**, lr=0.0003 | 23 | 3 | 20 (10, 12, 7) | 4 | 1 of 3 diverged | 50.0 | 1.1000 +- 0.8165 | "
            "0.0140 +- 0.0029 |" in table)  # valid: 0.1, 1.1, 2.1


def test_baselines_are_recomputed_from_the_packaged_split():
    rows = {r["model"]: r for r in locomotion.baselines()}
    test = locomotion.data.load("locomotion", "test").x
    assert rows["all zeros"]["mae"] == pytest.approx(float(np.abs(test).mean()))
    assert rows["PCA, 21 components (fitted on train)"]["mae"] == pytest.approx(0.0093, abs=5e-5)
    assert rows["PCA, 21 components (fitted on train)"]["code_size"] == 21 and rows["all zeros"]["code_size"] == 0


def test_a_sweep_from_before_presets_were_recorded_is_named_by_its_configuration(tmp_path):
    from jaxphysvae import presets
    config = json.loads(json.dumps(presets.get("locomotion-attnf-seq")[0].replace(epochs=7).to_json()))
    del config["clip_z_phy"]  # a field added since: its default is assumed
    member = {"seed": 0, "status": "completed", "best_epoch": 7, "rollbacks": [], "lr": 0.0003000000142,
              "valid": {"sse_per_seq": 0.1}, "test": {"mae": 0.01, "rmse": 0.02, "sse_per_seq": 0.03}}
    (tmp_path / "sweep.json").write_text(json.dumps({"members": [member], "epochs": 7, "config": config}))
    row, = locomotion.collect([tmp_path])
    assert row["model"] == "locomotion-attnf-seq" and row["changes"] == {"lr": 0.0003000000142}
    config["flow_aux1"] = 3  # no preset has this configuration: the directory names the row
    (tmp_path / "sweep.json").write_text(json.dumps({"members": [member], "epochs": 7, "config": config}))
    row, = locomotion.collect([tmp_path])
    assert row["model"] == tmp_path.name


def test_the_fitted_code_column_is_the_run_s_own_test_strides_refitted(tmp_path):
    from jaxphysvae.cli import main
    from jaxphysvae.fit import load_run
    from jaxphysvae.refine import refine
    small = [a for k, v in (("feat_hidden", "[16]"), ("feat_dim", "16"), ("unmixer_hidden", "[16]"),
                            ("residual_hidden", "[16]"), ("init_hidden", "[16]"), ("hamiltonian_hidden", "[16]"))
             for a in ("--set", f"{k}={v}")]
    run = tmp_path / "run"
    assert main(["train", "--preset", "locomotion-phys-vae", "--epochs", "1", "--out", str(run), "--no-progress",
                 *small]) == 0
    row, = locomotion.collect([run], refine_steps=3)
    _, _, model, _, params, splits, _ = load_run(run)
    x = splits["test"].x
    fitted = refine(model, params, x, steps=3, lr=0.01)["x_PAB"]
    assert row["fitted_mae"] == pytest.approx(float(np.abs(fitted - x).mean()), rel=1e-6)
    assert row["fitted_rmse"] == pytest.approx(float(np.sqrt(((fitted - x) ** 2).mean())), rel=1e-6)
    assert row["fitted_sse_per_seq"] == pytest.approx(float(((fitted - x) ** 2).sum((1, 2)).mean()), rel=1e-6)
    cell = f"| {row['fitted_mae']:.4f} / {row['fitted_rmse']:.4f} / {row['fitted_sse_per_seq']:.4f} |"
    assert cell in locomotion.markdown([row], [])
    assert "fitted_mae" not in locomotion.collect([run])[0]


def test_quick_run_trains_each_preset_and_tabulates_its_sweep(tmp_path, capsys):
    sweeps, out = tmp_path / "sweeps", tmp_path / "tables"
    result = locomotion.main(["--train", "--quick", "--presets", "locomotion-phys-vae", "--seeds", "0,1",
                              "--sweeps", str(sweeps), "--out", str(out), "--name", "quick"])
    sweep = json.loads((sweeps / "locomotion-phys-vae" / "sweep.json").read_text())
    assert sweep["epochs"] == locomotion.QUICK_EPOCHS and [m["seed"] for m in sweep["members"]] == [0, 1]
    (row,) = result["ours"]
    maes = [m["test"]["mae"] for m in sweep["members"]]
    assert row["model"] == "locomotion-phys-vae" and row["seeds"] == 2
    assert row["mae"] == pytest.approx(np.mean(maes)) and row["mae_std"] == pytest.approx(np.std(maes))
    assert row["changes"]["feat_dim"] == 16 and "fitted_mae" in row  # toy widths; refined codes (5 steps)
    assert json.loads((out / "quick.json").read_text())["ours"] == json.loads(json.dumps(result["ours"]))
    assert f"{row['mae']:.4f} +- {row['mae_std']:.4f}" in (out / "quick.md").read_text()
    with pytest.raises(SystemExit):
        locomotion.main(["--quick", str(sweeps / "locomotion-phys-vae")])
    assert "--quick makes --train's models small" in capsys.readouterr().err
