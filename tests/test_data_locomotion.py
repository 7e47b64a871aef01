import shutil

import numpy as np
import pytest
import scipy.io

from jaxphysvae import data
from jaxphysvae.data import locomotion
from jaxphysvae.errors import DataError
from tests.conftest import locomotion_dir


@pytest.fixture(scope="module")
def splits():
    directory = locomotion_dir()
    return {s: data.load("locomotion", s, directory=directory) for s in data.SPLITS}


def test_published_split_shapes_and_units(splits):
    assert {s: d.x.shape for s, d in splits.items()} == {
        "train": (400, 3, 101), "valid": (100, 3, 101), "test": (344, 3, 101)}
    x = np.concatenate([d.x for d in splits.values()])
    # joint angles in radians (degrees would be ~57x larger): hip -0.64..1.01, knee -0.30..1.42, ankle -1.13..0.15
    lo, hi = x.min(axis=(0, 2)), x.max(axis=(0, 2))
    assert np.all(lo > [-0.7, -0.4, -1.2]) and np.all(hi < [1.05, 1.5, 0.2])
    assert np.all(x[:, 1].mean(axis=1) > x[:, 2].mean(axis=1))  # knee flexion above ankle angle in every stride
    assert "MD5 verified" in splits["test"].source
    assert set(splits["train"].covariates) == {"foot", "speed", "stride_length", "step_width", "cadence"}


def test_mean_stride_baseline_matches_method_table(splits):
    mean_stride = splits["train"].x.mean(axis=0)
    err = splits["test"].x - mean_stride
    assert np.abs(err).mean() == pytest.approx(0.0875, abs=5e-5)
    assert np.sqrt((err**2).mean()) == pytest.approx(0.1129, abs=5e-5)
    assert (err**2).sum(axis=(1, 2)).mean() == pytest.approx(3.859, abs=5e-4)


def test_directory_from_environment(monkeypatch, tmp_path):
    source = locomotion_dir()
    for f in ("data_valid.mat", "prop_valid.txt"):
        shutil.copy(source / f, tmp_path / f)
    monkeypatch.setenv(locomotion.LOCOMOTION_DIR_ENV, str(tmp_path))
    ds = data.load("locomotion", "valid")
    assert ds.x.shape == (100, 3, 101) and str(tmp_path) in ds.source


def _write(directory, x, variable="data"):
    directory.mkdir(exist_ok=True)
    scipy.io.savemat(directory / "data_test.mat", {variable: x})
    return directory


@pytest.mark.parametrize("case, match", [
    ("missing_dir", "does not exist"),
    ("missing_file", "data_test.mat: file not found"),
    ("truncated", "cannot read as a MATLAB"),
    ("garbage", "cannot read as a MATLAB"),
    ("wrong_variable", "has no variable 'data'"),
    ("wrong_channels", "expected 3 channels"),
    ("wrong_rank", r"expected an array of shape \(N, C, T\)"),
    ("nan", "NaN or Inf values in 1 of 4 sequences"),
    ("inf", "NaN or Inf values"),
    ("bad_md5", "MD5 checksum does not match"),
    ("bad_table", "prop_test.txt: expected 4 rows"),
    ("unknown_split", "unknown split 'tests'"),
])
def test_bad_locomotion_input_gives_one_clear_error(case, match, tmp_path):
    good = np.random.default_rng(0).normal(size=(4, 3, 101))
    d = tmp_path / "split"
    split = "test"
    if case == "missing_dir":
        pass
    elif case == "missing_file":
        d.mkdir()
    elif case == "truncated":
        _write(d, good)
        blob = (d / "data_test.mat").read_bytes()
        (d / "data_test.mat").write_bytes(blob[: len(blob) // 2])
    elif case == "garbage":
        d.mkdir()
        (d / "data_test.mat").write_bytes(b"not a mat file at all" * 10)
    elif case == "wrong_variable":
        _write(d, good, variable="X")
    elif case == "wrong_channels":
        _write(d, good[:, :2])
    elif case == "wrong_rank":
        _write(d, good[0])
    elif case in ("nan", "inf"):
        bad = good.copy()
        bad[2, 1, 7] = np.nan if case == "nan" else np.inf
        _write(d, bad)
    elif case == "bad_md5":
        _write(d, good)
        (d / "MD5SUMS").write_text("0123456789abcdef0123456789abcdef  data_test.mat\n")
    elif case == "bad_table":
        _write(d, good)
        (d / "prop_test.txt").write_text("foot speed\n0 1.0\n1 1.2\n")
    elif case == "unknown_split":
        _write(d, good)
        split = "tests"
    with pytest.raises(DataError, match=match):
        data.load("locomotion", split, directory=d)
