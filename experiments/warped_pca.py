"""Time-warped PCA on unseen people (issue 14.4): does one nonlinear number per stride, the timing of its gait
cycle, let a code beat PCA at the same size? And does PCA itself generalise better when fitted on re-timed copies
of the training strides?

    python -m experiments.warped_pca [--by subject|stride] [--codes 12,16,21,23] [--results]   # seconds
    python -m experiments.warped_pca --quick --out /tmp/warped                                  # the test's

No model of this project beats PCA with as many numbers per stride on unseen people (docs/results/unseen_people.md).
This asks whether any nonlinear code of that size can, with the simplest nonlinearity a walking stride suggests: its
timing. A stride x (C, T) is read at warped times, the piecewise-linear map of [0, T - 1] onto itself that keeps both
ends (the heel strikes that bound a stride) and moves the anchor sample a to a + d (`warp_positions`). The code of a
stride is its warp d and the coefficients of the warped stride on the k - 1 principal directions of the training
strides, each warped by its own d; its reconstruction is that projection read back at the inverse warp. d is found by
a grid search (`SHIFTS`, in samples: whole and half samples up to 12, 12 % of the cycle), the training warps and the
basis by alternating the two (`ITERATIONS` times, the warps re-centred on their median each time: a warp common to
every stride belongs to the mean). The anchor is chosen per fold on the fold's validation people, among `ANCHORS`
(40-70 % of the cycle; toe-off is near 60 %), and the test people are scored once.

PCA of re-timed strides: PCA with k components fitted on the training strides and `RETIME_COPIES` copies of them,
each stride of a copy re-timed about 60 % of its cycle by a shift drawn from Uniform(-r, r) (T - 1) samples, as
the re-timing augmentation of training does (HParams.retime, jaxphysvae.timewarp.retime_sequences): a plain code of
k numbers whose subspace has seen more timings. r is chosen per fold on its validation people among `RETIMES`.

Folds, splits and the PCA it is compared with are experiments.unseen_subjects': the same 5 folds of the 22 raw
subjects in ../shared (--raw-dir), by subject (unseen people) or by stride. Errors in radians, MAE over every value,
mean +- std over folds. Writes OUT/NAME.{json,md,png} (default runs/warped_pca/warped_pca_BY; --results: also
experiments/results/).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from experiments import locomotion, report
from experiments.unseen_subjects import add_fold_arguments, fold_splits, read_raw_strides, summary
from jaxphysvae.data import raw
from jaxphysvae.errors import DataError
from jaxphysvae.evaluation import reconstruction_errors

RESULTS = Path(__file__).resolve().parent / "results"
ANCHORS = (0.4, 0.5, 0.6, 0.7)  # fractions of the cycle, chosen per fold on its validation people
SHIFTS = np.arange(-12.0, 12.5, 0.5)  # samples
ITERATIONS = 4
RETIMES = (0.03, 0.06, 0.12, 0.2)  # fractions of the cycle, chosen per fold on its validation people
RETIME_COPIES = 16
RETIME_ANCHOR = 0.6  # the training augmentation's default (ModelConfig.time_warp_anchor)
CODES = (12, 16, 21, 23)  # the code sizes of the phys-VAE screens (12, 16) and of the models (21, 23)


def warp_positions(shift: float, anchor: float, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The warp that moves sample `anchor` of a length-`length` sequence to `anchor + shift` and keeps both ends:
    (forward, inverse), each (length,) positions in samples, forward[t] where the warped sequence reads the original
    at its sample t, inverse[t] where the original reads the warped one. Raises DataError unless 0 < anchor + shift
    < length - 1 (a warp must keep time's order)."""
    end = length - 1
    if not 0 < anchor + shift < end or not 0 < anchor < end:
        raise DataError(f"a warp of {shift} samples at sample {anchor} of {length} would reverse time")
    grid = np.arange(length, dtype=float)
    forward = np.interp(grid, [0, anchor, end], [0, anchor + shift, end])
    return forward, np.interp(grid, forward, grid)


def resample(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """x (N, C, T) read at `positions` (T,) or per sequence (N, T), in samples within [0, T - 1], by linear
    interpolation: (N, C, T)."""
    positions = np.broadcast_to(positions, (x.shape[0], x.shape[-1]))
    left = np.clip(np.floor(positions).astype(int), 0, x.shape[-1] - 2)
    weight = (positions - left)[:, None]
    at = lambda index: np.take_along_axis(x, np.broadcast_to(index[:, None], x.shape), -1)
    return at(left) * (1 - weight) + at(left + 1) * weight


@dataclasses.dataclass(frozen=True)
class WarpedPCA:
    """A fitted time-warped PCA: mean (C*T,) and basis (k - 1, C*T) of the warped training strides, the anchor
    (samples) and the grid of warps (samples) a stride's warp is searched on."""

    mean: np.ndarray
    basis: np.ndarray
    anchor: float
    shifts: np.ndarray

    def reconstruct(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each stride of x (N, C, T) coded and decoded: (reconstructions (N, C, T), warps (N,) in samples), the
        warp of each stride the grid's that reconstructs it with the least absolute error."""
        best_err, best_shift, best = np.full(len(x), np.inf), np.zeros(len(x)), np.zeros_like(x)
        for shift in self.shifts:
            forward, inverse = warp_positions(shift, self.anchor, x.shape[-1])
            flat = resample(x, forward).reshape(len(x), -1) - self.mean
            projected = (flat @ self.basis.T @ self.basis + self.mean).reshape(x.shape)
            recon = resample(projected, inverse)
            err = np.abs(recon - x).mean(axis=(1, 2))
            better = err < best_err
            best_err[better], best_shift[better], best[better] = err[better], shift, recon[better]
        return best, best_shift


def fit(train: np.ndarray, code_size: int, anchor: float, shifts: np.ndarray = SHIFTS,
        iterations: int = ITERATIONS) -> WarpedPCA:
    """Time-warped PCA with `code_size` numbers per stride (code_size - 1 components and the warp) fitted on the
    training strides (N, C, T), the warp's anchor at sample `anchor`: from no warp, `iterations` times the basis of
    the strides warped by their current warps, then each stride's warp for that basis, re-centred on the median."""
    if not 1 <= code_size <= min(train.shape[0], train[0].size):
        raise DataError(f"a time-warped PCA of code size {code_size} from {train.shape[0]} training strides of "
                        f"{train[0].size} values: expected 1 to {min(train.shape[0], train[0].size)}")
    warps = np.zeros(len(train))
    for _ in range(iterations):
        forward = np.stack([warp_positions(w, anchor, train.shape[-1])[0] for w in warps])
        flat = resample(train, forward).reshape(len(train), -1)
        mean = flat.mean(0)
        basis = np.linalg.svd(flat - mean, full_matrices=False)[2][:code_size - 1]
        model = WarpedPCA(mean, basis, anchor, shifts)
        warps = model.reconstruct(train)[1]
        warps = np.clip(warps - np.median(warps), shifts.min(), shifts.max())
    return model


def retimed_copies(train: np.ndarray, level: float, copies: int, rng: np.random.Generator) -> np.ndarray:
    """The training strides (N, C, T) and `copies` re-timed copies of them, each stride of a copy read at the warp
    of a shift drawn from Uniform(-level, level) (T - 1) samples about RETIME_ANCHOR: ((copies + 1) N, C, T)."""
    end = train.shape[-1] - 1
    parts = [train]
    for _ in range(copies):
        shifts = rng.uniform(-level, level, len(train)) * end
        parts.append(resample(train, np.stack([warp_positions(d, RETIME_ANCHOR * end, end + 1)[0] for d in shifts])))
    return np.concatenate(parts)


def principal_directions(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean (C*T,) and the principal directions (rows, by decreasing variance) of `train` (M, C, T)."""
    flat = train.reshape(len(train), -1)
    mean = flat.mean(0)
    return mean, np.linalg.svd(flat - mean, full_matrices=False)[2]


def pca_reconstruct(directions: tuple[np.ndarray, np.ndarray], x: np.ndarray, components: int) -> np.ndarray:
    """x (N, C, T) projected on the mean and the first `components` of `directions` (`principal_directions`)."""
    mean, basis = directions[0], directions[1][:components]
    return ((x.reshape(len(x), -1) - mean) @ basis.T @ basis + mean).reshape(x.shape)


def errors(x_hat: np.ndarray, x: np.ndarray) -> dict:
    return {key: value for key, value in reconstruction_errors(x_hat, x).items() if key in ("mae", "rmse")}


def fold_rows(split: dict[str, raw.Strides], codes, anchors=ANCHORS, shifts: np.ndarray = SHIFTS,
              iterations: int = ITERATIONS, retimes=RETIMES, copies: int = RETIME_COPIES) -> list[dict]:
    """For each code size k: PCA with k components, PCA with k components of the re-timed training strides (its
    level the one in `retimes` with the least valid MAE; `copies` re-timed copies, drawn with seed 0) and
    time-warped PCA of code k (its anchor the fraction of the cycle in `anchors` with the least valid MAE), all
    fitted on the fold's train strides, scored on its valid and test strides."""
    train, valid, test = (split[s].x for s in ("train", "valid", "test"))
    pca = {r["code_size"]: r for r in locomotion.baselines(train, test, codes) if r["model"].startswith("PCA")}
    pca_valid = {r["code_size"]: r for r in locomotion.baselines(train, valid, codes) if r["model"].startswith("PCA")}
    augmented = {r: principal_directions(retimed_copies(train, r, copies, np.random.default_rng(0))) for r in retimes}
    rows = []
    for k in codes:
        rows.append({"model": f"PCA, {k} components", "code_size": k, "mae": pca[k]["mae"], "rmse": pca[k]["rmse"],
                     "valid_mae": pca_valid[k]["mae"]})
        valid_mae, r = min((float(np.abs(pca_reconstruct(augmented[r], valid, k) - valid).mean()), r)
                           for r in retimes)
        rows.append({"model": f"PCA, {k} components, of re-timed training strides", "code_size": k,
                     **errors(pca_reconstruct(augmented[r], test, k), test), "valid_mae": valid_mae, "retime": r})
        candidates = []
        for a in anchors:
            model = fit(train, k, a * (train.shape[-1] - 1), shifts, iterations)
            candidates.append((float(np.abs(model.reconstruct(valid)[0] - valid).mean()), a, model))
        valid_mae, a, model = min(candidates, key=lambda c: c[0])
        recon, warps = model.reconstruct(test)
        rows.append({"model": f"time-warped PCA, {k - 1} components + the warp", "code_size": k,
                     **errors(recon, test), "valid_mae": valid_mae, "anchor": a,
                     "warp_std": float(warps.std()), "warp_at_bound": float(np.mean(np.abs(warps) >= shifts.max()))})
    return rows


def run(strides: raw.Strides, folds: int, by: str, codes, split_seed: int = 0, anchors=ANCHORS,
        shifts: np.ndarray = SHIFTS, iterations: int = ITERATIONS, retimes=RETIMES,
        copies: int = RETIME_COPIES) -> dict:
    """Every fold's rows (`fold_rows`) and their mean +- std over folds."""
    started = time.time()
    per_fold = [fold_rows(split, codes, anchors, shifts, iterations, retimes, copies)
                for split in fold_splits(strides, folds, by, split_seed)]
    rows = [summary(first["model"], [f[i] for f in per_fold], first["code_size"],
                    keys=("valid_mae", "mae", "rmse", "warp_std")) for i, first in enumerate(per_fold[0])]
    return {"by": by, "folds": folds, "split_seed": split_seed, "source": strides.source, "anchors": list(anchors),
            "shifts": [float(shifts.min()), float(shifts.max()), float(shifts[1] - shifts[0])],
            "iterations": iterations, "retimes": list(retimes), "retime_copies": copies, "rows": rows,
            "seconds": time.time() - started}


def kind(row: dict) -> str:
    """"pca", "retimed" (PCA of re-timed training strides) or "warped" (time-warped PCA): what a table row is."""
    return "warped" if "warp_std" in row else "retimed" if "retime" in row["folds"][0] else "pca"


def markdown(result: dict) -> str:
    copies = result.get("retime_copies")
    retimed = (f"; PCA of re-timed strides: the training strides and {copies} re-timed copies, the level chosen on "
               f"each fold's validation people" if copies else "")
    lines = [f"Locomotion, {result['folds']} folds by {result['by']} ({result['source']}): PCA against time-warped "
             f"PCA of the same code size, both fitted on each fold's training strides. Errors in radians, mean +- std "
             f"over folds; the anchor chosen on each fold's validation people; the warp's spread over the test "
             f"strides in samples (of {result['shifts'][1]:g} at most){retimed}.", "",
             "| model | code size | valid MAE | test MAE | test RMSE | test MAE per fold | anchor or re-timing level "
             "per fold | warp std (samples) | against PCA, test MAE |",
             "|---|---|---|---|---|---|---|---|---|"]
    pca = {r["code_size"]: r for r in result["rows"] if kind(r) == "pca"}
    for r in result["rows"]:
        cells = " | ".join(f"{r[k]:.4f} +- {r[k + '_std']:.4f}" for k in ("valid_mae", "mae", "rmse"))
        per_fold = ", ".join(f"{f['mae']:.4f}" for f in r["folds"])
        what = kind(r)
        chosen = {"warped": lambda f: f"{f['anchor']:.0%}", "retimed": lambda f: f"{f['retime']:g}"}.get(what)
        chosen = ", ".join(chosen(f) for f in r["folds"]) if chosen else "-"
        spread = f"{r['warp_std']:.1f}" if what == "warped" else "-"
        ratio = f"{r['mae'] / pca[r['code_size']]['mae']:.3f}" if what != "pca" else "-"
        lines.append(f"| {r['model']} | {r['code_size']} | {cells} | {per_fold} | {chosen} | {spread} | {ratio} |")
    return "\n".join(lines) + "\n"


def figure(result: dict, path: Path) -> None:
    """Left: test MAE against code size, PCA and time-warped PCA, mean +- std over folds. Right: time-warped over
    PCA test MAE per fold (each fold a dot), below 1 where the warp helps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax, ratio_ax) = plt.subplots(1, 2, figsize=(10, 4))
    pca, retimed, warped = ([r for r in result["rows"] if kind(r) == k] for k in ("pca", "retimed", "warped"))
    for rows, label in ((pca, "PCA"), (retimed, "PCA of re-timed training strides"),
                        (warped, "time-warped PCA (k - 1 components + the warp)")):
        if rows:
            ax.errorbar([r["code_size"] for r in rows], [r["mae"] for r in rows], [r["mae_std"] for r in rows],
                        marker="o", capsize=3, label=label)
    ax.set_xlabel("code size k (numbers per stride)")
    ax.set_ylabel("test MAE (rad)")
    ax.set_yscale("log")
    ax.set_title(f"Locomotion, {result['folds']} folds by {result['by']}")
    ax.legend(fontsize=8)
    for other, colour, offset in ((retimed, "tab:orange", -0.2), (warped, "tab:green", 0.2)):
        for p, w in zip(pca, other):
            ratios = [fw["mae"] / fp["mae"] for fp, fw in zip(p["folds"], w["folds"])]
            ratio_ax.plot([p["code_size"] + offset] * len(ratios), ratios, "o", color=colour, alpha=0.6)
            ratio_ax.plot(p["code_size"] + offset, w["mae"] / p["mae"], "_", color="black", markersize=16)
    ratio_ax.axhline(1.0, color="tab:blue", linewidth=1)
    ratio_ax.set_xlabel("code size k (numbers per stride; re-timed left, time-warped right)")
    ratio_ax.set_ylabel("against PCA, test MAE")
    ratio_ax.set_title("per fold (dots) and of the fold means (bars)")
    fig.tight_layout()
    report.save_figure(fig, path, dpi=120)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fold_arguments(parser)
    parser.add_argument("--out", default="runs/warped_pca", help="directory of the tables")
    parser.add_argument("--codes", default=",".join(map(str, CODES)), help="comma-separated code sizes")
    parser.add_argument("--quick", action="store_true",
                        help="two anchors, a coarse warp grid, one iteration; two re-timing levels, two copies")
    parser.add_argument("--results", action="store_true", help="also write experiments/results/warped_pca_BY.*")
    args = parser.parse_args(argv)
    try:
        codes = sorted({int(k) for k in args.codes.split(",")})
    except ValueError:
        parser.error(f"--codes {args.codes}: expected comma-separated integers")
    settings = (dict(anchors=(0.5, 0.6), shifts=np.arange(-4.0, 5.0, 2.0), iterations=1, retimes=(0.05, 0.1),
                     copies=2) if args.quick else {})
    strides = read_raw_strides(parser, args.raw_dir)
    try:
        result = run(strides, args.folds, args.by, codes, args.split_seed, **settings)
    except DataError as e:
        parser.error(str(e))
    text = markdown(result)
    name = f"warped_pca_{args.by}"
    report.write(name, result, text, [Path(args.out)] + ([RESULTS] if args.results else []),
                 lambda path: figure(result, path))
    print(text)
    return result


if __name__ == "__main__":
    from experiments.command import run_command
    run_command(main)
