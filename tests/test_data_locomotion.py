import numpy as np
import pytest
import scipy.io

from jaxphysvae import data
from jaxphysvae.data import locomotion
from jaxphysvae.errors import DataError
from tests.conftest import published_split_dir


@pytest.fixture(scope="module")
def splits():
    return {s: data.load("locomotion", s) for s in data.SPLITS}  # the packaged split, on a bare installation


def test_published_split_shapes_and_units(splits):
    assert {s: d.x.shape for s, d in splits.items()} == {
        "train": (400, 3, 101), "valid": (100, 3, 101), "test": (344, 3, 101)}
    x = np.concatenate([d.x for d in splits.values()])
    # joint angles in radians (degrees would be ~57x larger): hip -0.64..1.01, knee -0.30..1.42, ankle -1.13..0.15
    lo, hi = x.min(axis=(0, 2)), x.max(axis=(0, 2))
    assert np.all(lo > [-0.7, -0.4, -1.2]) and np.all(hi < [1.05, 1.5, 0.2])
    assert np.all(x[:, 1].mean(axis=1) > x[:, 2].mean(axis=1))  # knee flexion above ankle angle in every stride
    assert "packaged with jaxphysvae" in splits["test"].source and "SHA-256 verified" in splits["test"].source
    assert set(splits["train"].covariates) == {"foot", "speed", "stride_length", "step_width", "cadence"}


def test_mean_stride_baseline_matches_method_table(splits):
    mean_stride = splits["train"].x.mean(axis=0)
    err = splits["test"].x - mean_stride
    assert np.abs(err).mean() == pytest.approx(0.0875, abs=5e-5)
    assert np.sqrt((err**2).mean()) == pytest.approx(0.1129, abs=5e-5)
    assert (err**2).sum(axis=(1, 2)).mean() == pytest.approx(3.859, abs=5e-4)


@pytest.mark.reference_data
def test_packaged_split_is_the_published_files_value_for_value():
    """The arrays that ship with the package equal the reference .mat and prop files exactly (float64)."""
    directory = published_split_dir()
    with np.load(locomotion.PACKAGED) as packaged:
        for split in data.SPLITS:
            np.testing.assert_array_equal(packaged[f"x_{split}"],
                                          scipy.io.loadmat(directory / f"data_{split}.mat")["data"])
            table = locomotion.read_table(directory / f"prop_{split}.txt", packaged[f"x_{split}"].shape[0])
            np.testing.assert_array_equal(packaged[f"prop_{split}"], np.stack(list(table.values()), axis=1))
            assert [str(c) for c in packaged["prop_columns"]] == list(table)
            assert locomotion.verify_md5(directory / f"data_{split}.mat")


def test_packaged_split_is_checked_against_its_hashes(monkeypatch, tmp_path):
    with np.load(locomotion.PACKAGED) as packaged:
        arrays = {k: packaged[k] for k in packaged.files}
    arrays["x_test"] = arrays["x_test"].copy()
    arrays["x_test"][5, 1, 50] += 1e-9  # one value changed in its last digits
    np.savez_compressed(tmp_path / "changed.npz", **arrays)
    monkeypatch.setattr(locomotion, "PACKAGED", tmp_path / "changed.npz")
    assert data.load("locomotion", "valid").num_sequences == 100
    with pytest.raises(DataError, match="x_test does not match its SHA-256"):
        data.load("locomotion", "test")
    (tmp_path / "changed.npz").write_bytes(b"truncated")
    with pytest.raises(DataError, match="packaged locomotion split cannot be read"):
        data.load("locomotion", "test")


def test_directory_from_environment_replaces_the_packaged_split(monkeypatch, tmp_path):
    packaged = data.load("locomotion", "valid")
    scipy.io.savemat(tmp_path / "data_valid.mat", {"data": packaged.x[:7].astype(np.float64)})
    monkeypatch.setenv(locomotion.LOCOMOTION_DIR_ENV, str(tmp_path))
    ds = data.load("locomotion", "valid")
    assert ds.x.shape == (7, 3, 101) and str(tmp_path) in ds.source
    monkeypatch.setenv(locomotion.LOCOMOTION_DIR_ENV, str(tmp_path / "absent"))
    with pytest.raises(DataError, match="absent does not exist .from \\$JAXPHYSVAE_LOCOMOTION_DIR"):
        data.load("locomotion", "valid")


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
