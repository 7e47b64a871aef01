"""experiments/warped_pca.py: the warp keeps time's order and inverts, a warp-free fit is PCA, a fit recovers the
warps of warped copies of one stride, and a run tabulates each code size against PCA, with PCA of re-timed training
strides recomputed."""

import numpy as np
import pytest

from experiments import unseen_subjects, warped_pca
from jaxphysvae.errors import DataError
from tests.helpers import fake_strides


def test_the_warp_moves_the_anchor_keeps_the_ends_and_inverts():
    forward, inverse = warped_pca.warp_positions(3.0, 60.0, 101)
    assert forward[[0, 60, 100]] == pytest.approx([0, 63, 100])
    assert forward[30] == pytest.approx(31.5) and forward[80] == pytest.approx(81.5)
    assert np.all(np.diff(forward) > 0)
    assert np.interp(inverse, np.arange(101.0), forward) == pytest.approx(np.arange(101.0))
    for shift, anchor in ((60.0, 40.0), (-40.0, 40.0), (0.0, 100.0)):
        with pytest.raises(DataError, match="reverse time"):
            warped_pca.warp_positions(shift, anchor, 101)


def test_resampling_interpolates_linearly_per_sequence():
    x = np.random.default_rng(0).standard_normal((2, 3, 11))
    positions = np.stack([np.linspace(0, 10, 11) ** 0.5 * 10 ** 0.5, np.full(11, 2.25)])
    out = warped_pca.resample(x, positions)
    for n in range(2):
        for c in range(3):
            assert out[n, c] == pytest.approx(np.interp(positions[n], np.arange(11.0), x[n, c]))
    assert warped_pca.resample(x, np.arange(11.0)) == pytest.approx(x)  # the same positions for every sequence


def test_without_warps_the_fit_is_pca():
    fold = unseen_subjects.fold_splits(fake_strides(), 3)[0]
    train, test = fold["train"].x, fold["test"].x
    model = warped_pca.fit(train, 5, 50.0, shifts=np.array([0.0]))
    recon, warps = model.reconstruct(test)
    flat_train, flat_test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    centred = flat_train - flat_train.mean(0)
    basis = np.linalg.eigh(centred.T @ centred)[1][:, ::-1][:, :4]  # code 5: 4 components and the warp
    expected = (flat_test - flat_train.mean(0)) @ basis @ basis.T + flat_train.mean(0)
    assert recon.reshape(len(test), -1) == pytest.approx(expected, abs=1e-9) and np.all(warps == 0)


def test_the_fit_recovers_the_warps_of_warped_copies_of_one_stride():
    """Strides that are one curve read at known warps: a code of the warp alone (no component) reconstructs them,
    and the warps it finds are the true ones up to the common offset the fit gives to the mean."""
    t = np.linspace(0, 1, 101)
    curve = np.stack([np.sin(2 * np.pi * t), np.exp(-((t - 0.6) / 0.08) ** 2), t * (1 - t)])[None]
    rng = np.random.default_rng(1)
    true = rng.choice(np.arange(-6.0, 6.5, 0.5), 40)
    strides = np.concatenate([warped_pca.resample(curve, warped_pca.warp_positions(d, 60.0, 101)[1])
                              for d in true])  # read at warp d's forward positions, each is the curve
    model = warped_pca.fit(strides[:30], 1, 60.0)
    recon, found = model.reconstruct(strides[30:])
    mean_only = np.abs(strides[30:] - strides[:30].mean(0)).mean()
    assert np.abs(recon - strides[30:]).mean() < 0.1 * mean_only  # 0.08: interpolation twice, a half-sample gauge
    offset = np.median(found - true[30:])
    assert np.abs(found - true[30:] - offset).max() <= 0.5 and abs(offset) <= 1.0


def test_impossible_code_sizes_are_refused():
    x = fake_strides().x[:10]
    for k in (0, 11):
        with pytest.raises(DataError, match="code size"):
            warped_pca.fit(x, k, 50.0)


def test_a_run_tabulates_each_code_size_against_pca(tmp_path):
    strides = fake_strides()
    result = warped_pca.run(strides, 2, "subject", [2, 4], anchors=(0.5, 0.6), shifts=np.arange(-4.0, 5.0, 2.0),
                            iterations=1)
    assert [r["model"] for r in result["rows"]] == [
        "PCA, 2 components", "PCA, 2 components, of re-timed training strides",
        "time-warped PCA, 1 components + the warp", "PCA, 4 components",
        "PCA, 4 components, of re-timed training strides", "time-warped PCA, 3 components + the warp"]
    fold0 = unseen_subjects.fold_splits(strides, 2)[0]
    pca = {r["code_size"]: r for r in unseen_subjects.fold_baselines(fold0, (2, 4))}
    assert result["rows"][0]["folds"][0]["mae"] == pytest.approx(pca[2]["mae"])
    # PCA of re-timed copies, recomputed: each copy's strides read by np.interp at a warp about 60 % of the cycle,
    # the shifts drawn as the experiment draws them (seed 0), the level the one with the least valid MAE
    train, valid, test = (fold0[s].x for s in ("train", "valid", "test"))
    end = train.shape[-1] - 1

    def pca_mae(level, x, k=4, copies=warped_pca.RETIME_COPIES):
        rng, parts = np.random.default_rng(0), [train]
        for _ in range(copies):
            shifts = rng.uniform(-level, level, len(train)) * end
            parts.append(np.stack([[np.interp(np.interp(np.arange(end + 1.0), [0, 0.6 * end, end],
                                                        [0, 0.6 * end + d, end]), np.arange(end + 1.0), c)
                                    for c in stride] for d, stride in zip(shifts, train)]))
        flat = np.concatenate(parts).reshape(-1, train[0].size)
        mean = flat.mean(0)
        basis = np.linalg.eigh((flat - mean).T @ (flat - mean))[1][:, ::-1][:, :k]
        fx = x.reshape(len(x), -1)
        return np.abs((fx - mean) @ basis @ basis.T + mean - fx).mean()

    retimed = result["rows"][4]["folds"][0]
    level = min(warped_pca.RETIMES, key=lambda r: pca_mae(r, valid))
    assert retimed["retime"] == level and retimed["mae"] == pytest.approx(pca_mae(level, test), rel=1e-6)
    warped = result["rows"][5]
    assert warped["mae"] == pytest.approx(np.mean([f["mae"] for f in warped["folds"]]))
    assert all(f["anchor"] in (0.5, 0.6) for f in warped["folds"])
    text = warped_pca.markdown(result)
    ratio = warped["mae"] / result["rows"][3]["mae"]
    assert f"| {warped['model']} | 4 |" in text and f"| {ratio:.3f} |" in text
    ratio = result["rows"][4]["mae"] / result["rows"][3]["mae"]
    assert f"| {level:g}, " in text and f"| {ratio:.3f} |" in text
    warped_pca.figure(result, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 0


def test_a_missing_raw_directory_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        warped_pca.main(["--raw-dir", str(tmp_path / "nowhere")])
    assert "no such directory" in capsys.readouterr().err


def test_the_quick_command_writes_its_table_from_raw_subject_files(tmp_path):
    from tests.test_data_raw import fake_subject
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    for n in range(1, 7):
        fake_subject(raw_dir / f"Subject{n}.mat", ["Walking"] * 3)
    result = warped_pca.main(["--raw-dir", str(raw_dir), "--quick", "--folds", "3", "--codes", "2",
                              "--out", str(tmp_path / "out")])
    assert result["anchors"] == [0.5, 0.6] and result["iterations"] == 1 and result["source"].startswith("6 raw files")
    assert [r["code_size"] for r in result["rows"]] == [2, 2, 2] and len(result["rows"][1]["folds"]) == 3
    assert result["retimes"] == [0.05, 0.1] and result["retime_copies"] == 2
    for suffix in ("json", "md", "png"):
        assert (tmp_path / "out" / f"warped_pca_subject.{suffix}").stat().st_size > 0
