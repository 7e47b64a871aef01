"""experiments/pendulum_reference.py: the reference code's pendulum files as a data file, and a one-epoch sweep."""

import json

import numpy as np
import pytest

from experiments import pendulum_reference
from jaxphysvae.data.arrays import load_file
from tests.conftest import SHARED_DATA


def _source():
    src = SHARED_DATA / "pendulum_reference"
    if not src.is_dir():
        pytest.skip("reference pendulum files (../shared) not available")
    return src


@pytest.mark.reference_data
def test_converted_file_holds_the_reference_values(tmp_path):
    src = _source()
    splits = load_file(pendulum_reference.convert(src, tmp_path / "ref.npz"))
    assert [splits[s].num_sequences for s in ("train", "valid", "test")] == [1000, 500, 1000]
    test = splits["test"]
    assert test.dt == 0.05 and test.x.shape == (1000, 1, 50)
    np.testing.assert_array_equal(test.x[:, 0], np.loadtxt(src / "data_test.txt").astype(np.float32))
    np.testing.assert_array_equal(test.params["omega"], np.loadtxt(src / "true_params_test.txt")[:, 1])
    assert test.params["omega"][0] == pytest.approx(2.208014413)  # the first row of true_params_test.txt


@pytest.mark.reference_data
def test_train_and_tabulate_on_a_tiny_budget(tmp_path):
    _source()
    table = pendulum_reference.main(["--train", "--quick", "--epochs", "1", "--seeds", "0", "--out", str(tmp_path)])
    pendulum_reference.main(["--train", "--quick", "--epochs", "1", "--seeds", "0", "--out", str(tmp_path), "--arm",
                             "tanh", "--set", "activation=tanh"])
    written = json.loads((tmp_path / "pendulum_reference.json").read_text())
    assert list(written["arms"]) == ["phys-vae", "tanh"]  # the preset's own arm first
    first = written["arms"]["phys-vae"]
    assert first["members"][0]["best_epoch"] == 1 and np.isfinite(first["members"][0]["omega_corr"])
    assert first == json.loads(json.dumps(table["arms"]["phys-vae"]))
    assert written["arms"]["tanh"]["changes"]["activation"] == "tanh" and "activation" not in first["changes"]
    assert first["changes"]["feat_dim"] == 16  # --quick's toy widths
    text = (tmp_path / "pendulum_reference.md").read_text()
    assert "reference code (NOTE.md, one run) | 5000 (4187) | 0.0710" in text
    assert 'activation="tanh"' in text and "arm tanh" in text
    assert list(pendulum_reference.main(["--out", str(tmp_path)])["arms"]) == ["phys-vae", "tanh"]  # no training
