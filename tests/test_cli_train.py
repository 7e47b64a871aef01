import json

import numpy as np
import pytest

from jaxphysvae.cli import main
from jaxphysvae.fit import load_run
from jaxphysvae.refine import DEFAULT_LR, refine
from tests.helpers import CLI_SMALL as SMALL


def test_train_then_eval_writes_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "pendulum-phys-vae", "--epochs", "2", "--out", str(out), "--no-progress",
                 *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "completed: 2 epochs" in printed and "test: MAE" in printed and "omega_mae" in printed
    assert {p.name for p in out.iterdir()} >= {"config.json", "metrics.jsonl", "best.ckpt", "last.ckpt",
                                                "summary.json"}
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["test"]) >= {"mae", "rmse", "sse_per_seq", "omega_mae", "omega_rel_err"}
    assert main(["eval", str(out), "--split", "test", "--samples", "2"]) == 0
    written = json.loads((out / "eval_test_samples2_seed0.json").read_text())
    assert "2 posterior samples" in written["protocol"]
    assert main(["eval", str(out)]) == 0
    mean = json.loads((out / "eval_test_samples0.json").read_text())
    assert mean["sse_per_seq"] == summary["test"]["sse_per_seq"]
    # the codes fitted at test time: their metrics beside the encoder's, recomputed from jaxphysvae.refine
    _, _, model, _, params, splits, _ = load_run(out)
    x = splits["test"].x
    for args, name, fit in ((["--refine-steps", "2", "--refine-method", "gauss-newton"], "fitted-gauss-newton2",
                             {"steps": 2, "method": "gauss-newton"}),
                            (["--refine-steps", "1", "--refine-parts", "phy"], "fitted-adam1-phy",
                             {"steps": 1, "parts": ("phy",)})):
        assert main(["eval", str(out), *args]) == 0
        written = json.loads((out / f"eval_test_samples0_{name}.json").read_text())
        assert written["mae"] == mean["mae"]  # the encoder's metrics unchanged
        fitted = refine(model, params, x, **fit)
        err = fitted["x_PAB"].astype(np.float64) - x
        assert written["fitted"]["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-6)
        assert written["fitted"]["sse_per_seq"] == pytest.approx((err ** 2).sum((1, 2)).mean(), rel=1e-6)
        assert written["fitted"]["sse_per_seq"] < written["fitted"]["sse_per_seq_encoder"]
    assert written["fitted"]["parts"] == ["phy"] and written["fitted"]["lr"] == DEFAULT_LR
    assert "code fitted (1 adam step of phy): MAE" in capsys.readouterr().out
    assert main(["eval", str(out), "--split", "train"]) == 0
    assert "train: MAE" in capsys.readouterr().out
    assert main(["eval", str(out), "--refine-steps", "1", "--refine-method", "gauss-newton", "--refine-lr", "0.1"]) == 2
    assert "--refine-lr is the step of Adam" in capsys.readouterr().err


def test_train_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--preset", "pendulum-vae"]) == 2
    assert "unknown preset 'pendulum-vae'" in capsys.readouterr().err
    assert main(["train", "--preset", "pendulum-phys-vae", "--set", "dim_z_aux1=-4"]) == 2
    assert "dim_z_aux1 must be -1" in capsys.readouterr().err
    assert main(["train", "--preset", "pendulum-phys-vae", "--set", "n_train=4", "--out", str(tmp_path)]) == 2
    assert "batch_size 200 exceeds the 4 training sequences" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["presets"]) == 0
    assert "locomotion-phys-vae-takeishi" in capsys.readouterr().out
