"""experiments/variants.py: a quick run's table against its sweeps, with its learning curves."""

import json

import numpy as np
import pytest

from experiments import variants
from jaxphysvae.data import pendulum
from jaxphysvae.errors import ConfigError


def test_quick_run_tabulates_its_sweeps_beside_the_baselines(tmp_path):
    result = variants.main(["--dataset", "pendulum", "--variants", "phys-only,nn-only", "--seeds", "0,1", "--quick",
                            "--out", str(tmp_path)])
    rows = {r["model"]: r for r in result["rows"]}
    sweep = json.loads((tmp_path / "pendulum" / "phys-only" / "sweep.json").read_text())
    omega = [m["test"]["omega_mae"] for m in sweep["members"]]
    phys = rows["pendulum-phys-only"]
    assert phys["omega_mae"] == pytest.approx(np.mean(omega)) and phys["omega_mae_std"] == pytest.approx(np.std(omega))
    assert phys["seeds"] == 2 and phys["epochs"] == 2 and phys["curve"]["epoch"] == [1, 2]
    log_file = tmp_path / "pendulum" / "phys-only" / "metrics.jsonl"
    log = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert phys["curve"]["valid_sse_per_seq"][-1] == pytest.approx(np.mean(log[-1]["valid_sse_per_seq"]), rel=1e-3)
    assert "omega_mae" not in rows["pendulum-nn-only"]  # no physics, no omega
    test, train = pendulum.load("test", n=16), pendulum.load("train", n=32)
    base = result["baselines"]["omega MAE"]
    assert base["training mean"] == pytest.approx(np.abs(train.params["omega"].mean() - test.params["omega"]).mean())
    assert base["prior mean"] == pytest.approx(np.abs((0.392 + 3.53) / 2 - test.params["omega"]).mean(), rel=1e-6)
    text = (tmp_path / "variants_pendulum.md").read_text()
    assert "| pendulum-nn-only | 2 | 2 (" in text and "| - | - |" in text
    assert (tmp_path / "variants_pendulum.png").stat().st_size > 0


def test_set_changes_every_variant_into_its_own_sweep_and_table(tmp_path):
    result = variants.main(["--dataset", "pendulum", "--variants", "phys-only", "--seeds", "0", "--quick",
                            "--set", "kl_weight=2.5", "--set", "alpha=0.5", "--out", str(tmp_path)])
    # hyper-parameters only: the programs are those of the quick run above (a compilation cache hit)
    assert [r["model"] for r in result["rows"]] == ["pendulum-phys-only (kl_weight=2.5, alpha=0.5)"]
    sweep_dir = tmp_path / "pendulum" / "phys-only+kl_weight=2.5+alpha=0.5"
    stored = json.loads((sweep_dir / "sweep_config.json").read_text())
    assert stored["members"][0]["kl_weight"] == 2.5 and stored["members"][0]["alpha"] == 0.5
    assert not (tmp_path / "pendulum" / "phys-only").exists()
    assert (tmp_path / "variants_pendulum_kl_weight=2.5+alpha=0.5.md").is_file()
    assert not (tmp_path / "variants_pendulum.md").exists()
    # --name: the same sweep (continued, nothing to train) tabulated under a name of one's own
    again = variants.main(["--dataset", "pendulum", "--variants", "phys-only", "--seeds", "0", "--quick",
                           "--set", "kl_weight=2.5", "--set", "alpha=0.5", "--out", str(tmp_path), "--name", "mine"])
    assert again["rows"][0]["mae"] == pytest.approx(result["rows"][0]["mae"])
    assert json.loads((tmp_path / "mine.json").read_text())["rows"][0]["model"] == result["rows"][0]["model"]
    assert (tmp_path / "mine.md").is_file() and (tmp_path / "mine.png").is_file()
    # another call's table under that name (another variant, the baselines alone) is refused before it trains, and
    # the table stays as it was
    stored = (tmp_path / "mine.json").read_bytes()
    held = r"mine.json holds the table of pendulum-phys-only \(kl_weight=2.5, alpha=0.5\); this call's is of "
    for call, listed in ((["--variants", "nn-only", "--set", "kl_weight=2.5", "--set", "alpha=0.5"],
                          r"pendulum-nn-only \(kl_weight=2.5, alpha=0.5\)"),
                         (["--baselines-only"], r"no model \(the baselines alone\)")):
        with pytest.raises(ConfigError, match=held + listed + ": give --name NAME to keep both"):
            variants.main(["--dataset", "pendulum", "--seeds", "0", "--quick", "--out", str(tmp_path),
                           "--name", "mine", *call])
    assert (tmp_path / "mine.json").read_bytes() == stored
    assert not (tmp_path / "pendulum" / "nn-only+kl_weight=2.5+alpha=0.5").exists()
    with pytest.raises(SystemExit):
        variants.main(["--variants", "phys-only", "--set", "no_such=1", "--out", str(tmp_path)])


def test_a_variant_is_any_preset_of_the_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit):
        variants.main(["--dataset", "pendulum", "--variants", "nf-tuned", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "unknown variant 'nf-tuned' of pendulum; expected some of nn-only," in err and "attnf-seq" in err
    assert "attnf-seq-tuned" not in err and not any(tmp_path.iterdir())  # refused before anything is written
    with pytest.raises(SystemExit):  # advdif has it: the call goes on to --set, which refuses the unknown key
        variants.main(["--dataset", "advdif", "--variants", "nf-tuned", "--set", "no_such=1", "--out", str(tmp_path)])
    assert "--set:" in capsys.readouterr().err
