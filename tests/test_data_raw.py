import hashlib
import io
import json
import urllib.error

import numpy as np
import pytest
import scipy.io

from jaxphysvae import data
from jaxphysvae.cli import main
from jaxphysvae.data import download, locomotion, raw
from jaxphysvae.errors import DataError
from tests.conftest import raw_dir

NAMES = ["PelvisFlx", "PelvisAdd", "PelvisRot", "HipFlx   ", "HipAdd   ", "HipRot   ", "KneeFlx  ", "KneeAdd  ",
         "KneeRot  ", "AnkleFlx ", "AnkleAdd ", "AnkleRot "]


def fake_subject(path, tasks, feet=None, rng=None, single=False):
    """Write a SubjectN.mat in the raw layout; Ang row r of stride j is filled with 100 j + r (degrees)."""
    feet = feet or ["RX"] * len(tasks)
    dtype = [("Foot", "O"), ("Task", "O"), ("Ang", "O"), ("speed", "O"), ("strideLength", "O"),
             ("stepWidth", "O"), ("cadence", "O")]
    trials = np.zeros(len(tasks), dtype=dtype)
    for j, (task, foot) in enumerate(zip(tasks, feet)):
        ang = np.tile((100.0 * j + np.arange(12.0))[:, None], (1, 101))
        trials[j] = (foot, task, ang, 1.0 + j, 1.2, 0.1, 100.0 + j)
    s = {"name": "fake", "Age": 30, "KinFreq": 100, "AngVarName": np.array(NAMES, dtype=object),
         "Data": trials[0] if single else trials}
    scipy.io.savemat(path, {"s": s})


@pytest.fixture
def fake_raw(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    fake_subject(d / "Subject1.mat", ["Walking", "StepUp", "Walking"], ["RX", "RX", "LX"])
    fake_subject(d / "Subject2.mat", ["Walking", "Walking", "ToeWalking"])
    fake_subject(d / "Subject10.mat", ["Walking"], single=True)
    fake_subject(d / "Subject3.mat", ["HeelWalking"])
    (d / "notes.txt").write_text("ignored")
    return d


def test_builder_on_fake_files_keeps_walking_strides_in_radians(fake_raw):
    strides = raw.read_strides(fake_raw)
    assert strides.x.shape == (5, 3, 101)
    np.testing.assert_array_equal(strides.covariates["subject"], [1, 1, 2, 2, 10])
    np.testing.assert_array_equal(strides.covariates["foot"], [0, 1, 0, 0, 0])
    # stride j=2 of Subject1: rows HipFlx=3, KneeFlx=6, AnkleFlx=9 hold 200 + row, in degrees
    np.testing.assert_allclose(strides.x[1, :, 0], np.deg2rad([203.0, 206.0, 209.0]), rtol=1e-6)
    np.testing.assert_array_equal(strides.covariates["cadence"], [100, 102, 100, 101, 100])


def test_fake_splits_of_both_kinds_round_trip_through_the_loader(fake_raw, tmp_path):
    strides = raw.read_strides(fake_raw)
    by_stride = raw.split_strides(strides, by="stride", sizes=(2, 1), seed=0)
    assert [by_stride[s].num_sequences for s in data.SPLITS] == [2, 1, 2]
    by_subject = raw.split_strides(strides, by="subject", sizes=(1, 1), seed=0)
    subjects = [set(by_subject[s].covariates["subject"].tolist()) for s in data.SPLITS]
    assert all(not (a & b) for i, a in enumerate(subjects) for b in subjects[i + 1:])
    out = raw.write_split(by_stride, tmp_path / "split")
    loaded = data.load("locomotion", "test", directory=out)
    np.testing.assert_allclose(loaded.x, by_stride["test"].x, rtol=1e-6)
    np.testing.assert_array_equal(loaded.covariates["subject"], by_stride["test"].covariates["subject"])


@pytest.mark.parametrize("case, match", [
    ("empty_dir", "holds no SubjectN.mat files"),
    ("no_dir", "does not exist"),
    ("corrupt", "Subject4.mat: cannot read as a MATLAB"),
    ("no_struct", "Subject4.mat: has no struct 's'"),
    ("no_walking", "no stride with Task == 'Walking'"),
    ("bad_foot", "has Foot 'XX'"),
])
def test_builder_bad_input(case, match, tmp_path):
    d = tmp_path / "raw"
    if case != "no_dir":
        d.mkdir()
    if case == "corrupt":
        (d / "Subject4.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    elif case == "no_struct":
        scipy.io.savemat(d / "Subject4.mat", {"x": np.zeros(3)})
    elif case == "no_walking":
        fake_subject(d / "Subject4.mat", ["StepUp"])
    elif case == "bad_foot":
        fake_subject(d / "Subject4.mat", ["Walking"], ["XX"])
    with pytest.raises(DataError, match=match):
        raw.read_strides(d)


def test_impossible_split_sizes(fake_raw):
    strides = raw.read_strides(fake_raw)
    with pytest.raises(DataError, match="impossible split"):
        raw.split_strides(strides)  # 400 + 100 of 5 strides
    with pytest.raises(DataError, match="impossible split"):
        raw.split_strides(strides, by="subject", sizes=(2, 1))  # 3 subjects leave none for test
    with pytest.raises(DataError, match="unknown split kind"):
        raw.split_strides(strides, by="foot")
    with pytest.raises(DataError, match="positive count or a fraction"):
        raw.split_strides(strides, sizes=(1.5, 1))


@pytest.mark.reference_data
def test_builder_on_the_real_raw_files(tmp_path):
    strides = raw.read_strides(raw_dir())
    assert strides.x.shape == (235, 3, 101)
    assert len(np.unique(strides.covariates["subject"])) == 22
    by_subject = raw.split_strides(strides, by="subject", seed=1)
    subjects = [set(by_subject[s].covariates["subject"].tolist()) for s in data.SPLITS]
    assert sum(len(s) for s in subjects) == 22 and not (subjects[0] & subjects[1] or subjects[0] & subjects[2]
                                                        or subjects[1] & subjects[2])
    assert sum(by_subject[s].num_sequences for s in data.SPLITS) == 235
    by_stride = raw.split_strides(strides, by="stride", sizes=(150, 40), seed=1)
    assert [by_stride[s].num_sequences for s in data.SPLITS] == [150, 40, 45]
    with pytest.raises(DataError, match="impossible split: 400 train"):
        raw.split_strides(strides)


@pytest.mark.reference_data
def test_real_raw_strides_are_the_published_ones():
    """The published split was built from all 50 subjects: every raw walking stride is one of its strides."""
    strides = raw.read_strides(raw_dir()).x.reshape(235, -1)
    published = np.concatenate([data.load("locomotion", s).x
                                for s in data.SPLITS]).reshape(844, -1)
    nearest = np.min(((strides[:, None, :] - published[None, :, :]) ** 2).max(axis=2), axis=1)
    assert np.max(nearest) < 1e-10


def test_cli_build_locomotion(fake_raw, tmp_path, capsys):
    out = tmp_path / "built"
    assert main(["data", "build-locomotion", "--raw-dir", str(fake_raw), "--out", str(out), "--sizes", "2,1"]) == 0
    assert "train: 2 strides" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"data_{s}.mat" for s in data.SPLITS] + [f"prop_{s}.txt" for s in data.SPLITS])


class FakeFigshare:
    """Serves the collection listing, the article records and the file bytes; honours Range requests."""

    def __init__(self, files, fail_after=None):
        self.files = files
        self.fail_after = fail_after
        self.requests = []

    def __call__(self, request, timeout=None):
        url = request.full_url
        self.requests.append((url, request.headers.get("Range")))
        if "/collections/" in url:
            return self._response(json.dumps([{"id": 1}]).encode())
        if url.endswith("/articles/1"):
            entries = [{"name": n, "size": len(b), "download_url": f"https://files/{n}",
                        "computed_md5": hashlib.md5(b).hexdigest()} for n, b in self.files.items()]
            return self._response(json.dumps({"files": entries + [{"name": "readme.txt", "size": 1,
                                                                   "download_url": "x"}]}).encode())
        body = self.files[url.rsplit("/", 1)[1]]
        start = int(request.headers["Range"].split("=")[1].rstrip("-")) if request.headers.get("Range") else 0
        chunk = body[start:]
        if self.fail_after is not None:
            chunk, self.fail_after = chunk[: self.fail_after], None
            return self._response(chunk, 206 if start else 200, broken=True)
        return self._response(chunk, 206 if start else 200)

    @staticmethod
    def _response(body, status=200, broken=False):
        class Response(io.BytesIO):
            def read(self, n=-1):
                out = super().read(n)
                if broken and not out:
                    raise urllib.error.URLError("connection reset")
                return out

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        r = Response(body)
        r.status = status
        return r


def test_download_resumes_and_verifies(tmp_path):
    files = {"Subject2.mat": bytes(range(256)) * 40, "Subject1.mat": b"abc" * 1000}
    server = FakeFigshare(files, fail_after=1000)
    with pytest.raises(DataError, match="partial downloads resume"):
        download.download(tmp_path, opener=server, progress=lambda _: None)
    assert (tmp_path / "Subject1.mat.part").stat().st_size == 1000
    server = FakeFigshare(files)
    paths = download.download(tmp_path, opener=server, progress=lambda _: None)
    assert [p.name for p in paths] == ["Subject1.mat", "Subject2.mat"]
    assert ("https://files/Subject1.mat", "bytes=1000-") in server.requests
    assert all((tmp_path / n).read_bytes() == b for n, b in files.items())
    assert not list(tmp_path.glob("*.part"))
    # present and verified files are not downloaded again
    server = FakeFigshare(files)
    download.download(tmp_path, opener=server, progress=lambda _: None)
    assert not any(url.startswith("https://files/") for url, _ in server.requests)


def test_download_rejects_a_corrupt_file(tmp_path):
    server = FakeFigshare({"Subject1.mat": b"abc"})
    real = server.__call__

    def corrupting(request, timeout=None):
        r = real(request, timeout)
        return server._response(b"xyz") if request.full_url.startswith("https://files/") else r

    with pytest.raises(DataError, match="MD5 mismatch"):
        download.download(tmp_path, opener=corrupting, progress=lambda _: None)
    assert not list(tmp_path.iterdir())


def test_download_offline_message(tmp_path):
    def offline(request, timeout=None):
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(DataError, match="cannot download from figshare .*Name or service not known.*by hand"):
        download.download(tmp_path, opener=offline, progress=lambda _: None)


@pytest.mark.reference_data
def test_published_permutation_places_every_known_stride_where_the_published_split_has_it():
    """MATLAB's rng(1234567890); randperm(844) is reproduced: for the 235 raw strides of 22 subjects, whose positions
    in the published split are known, the permutation maps each position back to a stride index in subject order
    such that every subject's strides form one block of consecutive indices, in the raw files' order and in the
    subjects' order (a wrong permutation scatters them: chance agreement is out of the question)."""
    strides = raw.read_strides(raw_dir())
    published = np.concatenate([np.load(locomotion.PACKAGED)[f"x_{s}"] for s in data.SPLITS]).reshape(844, -1)
    flat = strides.x.reshape(strides.num_sequences, -1)
    distance = np.abs(flat[:, None, :] - published[None]).max(axis=-1)
    position = distance.argmin(axis=1)
    assert distance.min(axis=1).max() == 0.0  # raw values at full precision: bit for bit the published ones
    order = raw.published_order()
    assert sorted(order.tolist()) == list(range(844))
    index = order[position]  # each raw stride's index among all 844 strides in subject order
    assert np.all(np.diff(index) > 0)  # subjects in order
    for subject in np.unique(strides.covariates["subject"]):
        block = index[strides.covariates["subject"] == subject]
        np.testing.assert_array_equal(np.diff(block), 1)


def test_published_split_needs_all_fifty_subjects(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    fake_subject(d / "Subject1.mat", ["Walking", "Walking"])
    with pytest.raises(DataError, match="needs the walking strides of all 50 subjects"):
        raw.published_split(raw.read_strides(d))
    assert main(["data", "build-locomotion", "--raw-dir", str(d), "--out", str(tmp_path / "o"), "--published"]) == 2


def test_published_split_from_fifty_fake_subjects_follows_the_permutation(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    counts = np.random.default_rng(0).multinomial(844 - 50, np.full(50, 1 / 50)) + 1  # 844 strides, >= 1 each
    for subject, count in enumerate(counts, start=1):
        fake_subject(d / f"Subject{subject}.mat", ["Walking"] * int(count))
    strides = raw.read_strides(d)
    splits = raw.published_split(strides)
    assert [splits[s].num_sequences for s in data.SPLITS] == [400, 100, 344]
    order = raw.published_order()
    # the permutation's ends, as the reference-data test above verifies them (0-based stride indices)
    assert order[:8].tolist() == [438, 503, 500, 518, 272, 248, 559, 562] and order[-3:].tolist() == [667, 356, 826]
    np.testing.assert_array_equal(splits["valid"].x, strides.x[order[400:500]])
    out = tmp_path / "split"
    assert main(["data", "build-locomotion", "--raw-dir", str(d), "--out", str(out), "--published"]) == 0
    np.testing.assert_array_equal(scipy.io.loadmat(out / "data_test.mat")["data"], strides.x[order[500:]])
    header = (out / "prop_test.txt").read_text().splitlines()[0]
    assert header == "foot speed stride_length step_width cadence"


def test_builder_keeps_raw_precision(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    fake_subject(d / "Subject1.mat", ["Walking"] * 3)
    strides = raw.read_strides(d)
    x = strides.x + 1e-9  # values that float32 cannot hold
    splits = raw.split_strides(raw.Strides(x, strides.covariates, "fake"), sizes=(1, 1))
    out = raw.write_split(splits, tmp_path / "split")
    written = np.concatenate([scipy.io.loadmat(out / f"data_{s}.mat")["data"] for s in data.SPLITS])
    np.testing.assert_array_equal(np.sort(written.ravel()), np.sort(x.ravel()))


def test_subject_split_with_a_separate_test_directory(fake_raw, tmp_path, capsys):
    others = tmp_path / "others"
    others.mkdir()
    fake_subject(others / "Subject20.mat", ["Walking", "Walking"])
    fake_subject(others / "Subject21.mat", ["Walking"])
    strides, test = raw.read_strides(fake_raw), raw.read_strides(others)
    splits = raw.split_strides(strides, by="subject", sizes=(0.67, 0.33), seed=0, test=test)
    subjects = {s: set(splits[s].covariates["subject"].tolist()) for s in data.SPLITS}
    assert subjects["train"] | subjects["valid"] == {1, 2, 10} and subjects["test"] == {20, 21}
    assert len(subjects["train"]) == 2 and not subjects["train"] & subjects["valid"]
    out = tmp_path / "built"
    assert main(["data", "build-locomotion", "--raw-dir", str(fake_raw), "--test-raw-dir", str(others), "--by",
                 "subject", "--sizes", "2,1", "--out", str(out)]) == 0
    assert "test: 3 strides of 2 subjects" in capsys.readouterr().out
    loaded = data.load("locomotion", "test", directory=out)
    np.testing.assert_array_equal(loaded.covariates["subject"], [20, 20, 21])
    written = scipy.io.loadmat(out / "data_test.mat")["data"]
    np.testing.assert_array_equal(written, test.x)  # the raw values, not rounded to float32
    with pytest.raises(DataError, match="must use all 3 subjects; 1 \\+ 1 leave 1"):
        raw.split_strides(strides, by="subject", sizes=(1, 1), test=test)
    with pytest.raises(DataError, match=r"shares subject\(s\) \[1, 2, 10\]"):
        raw.split_strides(strides, by="subject", test=strides)
    by_stride = raw.split_strides(strides, sizes=(4, 1), test=test)  # over strides: the same people may repeat
    assert [by_stride[s].num_sequences for s in data.SPLITS] == [4, 1, 3]
