"""A user's own data files (jaxphysvae.data.arrays): layouts, splits, and the errors of bad files."""

import numpy as np
import pytest

from jaxphysvae.config import Config
from jaxphysvae.data.arrays import from_arrays, load_file, read_sequences, split_sizes
from jaxphysvae.errors import ConfigError, DataError
from jaxphysvae.runs import load_splits


def _sequences(n=20, c=2, t=7):
    # every value of sequence i starts with i: rows can be traced through any split
    x = np.arange(n)[:, None, None] + np.linspace(0, 0.5, c * t).reshape(1, c, t)
    return x, np.arange(n) * 10.0


def test_split_sizes_default_and_given():
    assert split_sizes(20) == (16, 2, 2)
    assert split_sizes(5) == (3, 1, 1)
    assert split_sizes(20, (None, 5, 3)) == (12, 5, 3)
    assert split_sizes(20, (4, 2, 2)) == (4, 2, 2)  # fewer than n: the rest is left out
    with pytest.raises(DataError, match="cannot be split into 15 training, 4 validation and 2 test"):
        split_sizes(20, (15, 4, 2))
    with pytest.raises(DataError, match="cannot be split"):
        split_sizes(2)
    with pytest.raises(DataError, match="n_valid must be a positive integer"):
        split_sizes(20, (None, 0, None))


def test_from_arrays_splits_keep_each_sequence_with_its_parameter():
    x, k = _sequences()
    splits = from_arrays(x, 0.1, {"k": k}, sizes=(None, 3, 4), seed=1)
    rows = {s: splits[s].x[:, 0, 0].round().astype(int) for s in splits}
    assert [len(rows[s]) for s in ("train", "valid", "test")] == [13, 3, 4]
    assert sorted(np.concatenate(list(rows.values()))) == list(range(20))  # disjoint, every sequence once
    for s, ds in splits.items():
        np.testing.assert_array_equal(ds.params["k"], rows[s] * 10.0)
        np.testing.assert_array_equal(ds.covariates["index"], rows[s])
        assert ds.dt == 0.1 and ds.channels == ("ch0", "ch1")
    again = from_arrays(x, 0.1, {"k": k}, sizes=(None, 3, 4), seed=1)
    np.testing.assert_array_equal(again["test"].x, splits["test"].x)
    other = from_arrays(x, 0.1, {"k": k}, sizes=(None, 3, 4), seed=2)
    assert not np.array_equal(other["test"].x, splits["test"].x)


def test_npz_layouts_and_config(tmp_path):
    x, k = _sequences()
    np.savez(tmp_path / "all.npz", x=x, dt=0.25, param_k=k, channels=np.array(["a", "b"]))
    config = Config(dataset=str(tmp_path / "all.npz"), n_valid=5, n_test=5, batch_size=4, data_seed=3)
    splits = load_splits(config)
    assert [splits[s].num_sequences for s in ("train", "valid", "test")] == [10, 5, 5]
    assert splits["train"].dt == 0.25 and splits["train"].channels == ("a", "b")
    np.testing.assert_array_equal(splits["test"].params["k"], splits["test"].x[:, 0, 0].round() * 10)
    whole = read_sequences(tmp_path / "all.npz")
    np.testing.assert_allclose(whole.x, x.astype(np.float32))  # every sequence, in the file's order
    np.testing.assert_array_equal(whole.params["k"], k)

    np.savez(tmp_path / "split.npz", x_train=x[:12], x_valid=x[12:16], x_test=x[16:], dt=0.5,
             param_k_train=k[:12], param_k_valid=k[12:16], param_k_test=k[16:])
    splits = load_file(tmp_path / "split.npz")
    np.testing.assert_array_equal(splits["valid"].params["k"], k[12:16])
    np.testing.assert_allclose(read_sequences(tmp_path / "split.npz", "test").x, x[16:].astype(np.float32))

    np.save(tmp_path / "plain.npy", x)
    with pytest.raises(DataError, match="no time step"):
        load_file(tmp_path / "plain.npy")
    assert load_splits(Config(dataset=str(tmp_path / "plain.npy"), data_dt=0.2, batch_size=4))["test"].dt == 0.2


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((6, 1, 5))}, "no time step"),
    ({"x": np.zeros((6, 1, 5)), "dt": -1.0}, "dt must be a positive number"),
    ({"x": np.zeros((6, 5)), "dt": 0.1}, r"expected an array of shape \(N, C, T\)"),
    ({"x": np.full((6, 1, 5), np.nan), "dt": 0.1}, "30 NaN or Inf values in 6 of 6 sequences"),
    ({"x": np.zeros((6, 1, 5)), "dt": 0.1, "param_k": np.zeros(5)}, r"parameter 'k' has shape \(5,\)"),
    ({"x": np.zeros((6, 1, 5)), "dt": 0.1, "y": np.zeros(6)}, r"unknown key\(s\) \['y'\]"),
    ({"x": np.zeros((6, 1, 5)), "x_train": np.zeros((6, 1, 5)), "dt": 0.1}, "holds both x and x_train"),
    ({"x_train": np.zeros((6, 1, 5)), "dt": 0.1}, "x_valid, x_test missing"),
    ({"x_train": np.zeros((6, 1, 5)), "x_valid": np.zeros((2, 1, 5)), "x_test": np.zeros((2, 1, 4)), "dt": 0.1},
     "the splits differ in channels or length"),
    ({"x_train": np.zeros((6, 1, 5)), "x_valid": np.zeros((2, 1, 5)), "x_test": np.zeros((2, 1, 5)), "dt": 0.1,
      "param_k": np.zeros(6)}, "need a split suffix"),
])
def test_bad_files_name_the_problem(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_file(tmp_path / "bad.npz")


def test_missing_corrupt_and_misnamed_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_file(tmp_path / "none.npz")
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="cannot read it as a .npz file"):
        load_file(tmp_path / "broken.npz")
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(DataError, match="expected a .npz or .npy file"):
        load_file(tmp_path / "data.csv")
    with pytest.raises(ConfigError, match="unknown dataset 'pendulm'"):
        Config(dataset="pendulm")
    with pytest.raises(ConfigError, match="data_dt .* needs a data file"):
        Config(data_dt=0.1)


def test_a_locomotion_split_directory_is_a_data_path(tmp_path):
    from jaxphysvae.data import raw
    rng = np.random.default_rng(0)
    strides = {s: raw.Strides(rng.normal(size=(n, 3, 101)), {"subject": np.arange(n) + 1.0}, "fake")
               for s, n in (("train", 6), ("valid", 2), ("test", 3))}
    directory = raw.write_split(strides, tmp_path / "split")
    splits = load_splits(Config(dataset=str(directory), batch_size=2))
    assert [splits[s].num_sequences for s in ("train", "valid", "test")] == [6, 2, 3]
    np.testing.assert_allclose(splits["test"].x, strides["test"].x.astype(np.float32))
    with pytest.raises(DataError, match="has its own splits and time step"):
        load_splits(Config(dataset=str(directory), batch_size=2, n_test=1))


def test_split_sizes_for_the_packaged_locomotion_split_are_refused_not_ignored():
    assert load_splits(Config(dataset="locomotion", batch_size=2))["train"].num_sequences == 400
    with pytest.raises(ConfigError, match="n_train, n_test: the locomotion data set's splits are fixed"):
        load_splits(Config(dataset="locomotion", batch_size=2, n_train=50, n_test=10))
