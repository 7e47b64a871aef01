"""Locomotion on people the model has never seen (issue 14.4): cross-validation with folds by subject.

    python -m experiments.unseen_subjects --baselines-only            # the linear baselines on every fold (seconds)
    python -m experiments.unseen_subjects [--presets a,b] [--seeds 0] [--epochs N] [--results]   # train (long)
    python -m experiments.unseen_subjects --by stride ...             # the same folds over strides, for the gap

Data: the walking strides of the raw subject files in --raw-dir (default: the 22 subjects of ../shared, 235
strides; `jaxphysvae data download` fetches all 50). Folds (--by subject): the subjects, permuted with --split-seed,
in K near-equal groups; fold k tests on group k's people, validates on VALID_FRACTION of the other subjects (the
first of them in the same permutation) and trains on the rest, so no person is in two roles. --by stride makes the
same kind of folds over strides (people shared between roles, as in the published split): the difference between
the two is the gap that unseen people open.

Per fold and preset: one vectorised sweep over --seeds on that fold's splits (OUT/BY/PRESET/foldK, resumable: the
command continues whatever it finds), its best-validation checkpoint scored on the fold's test people (posterior
mean; a `batch` attention context sees the whole test fold in one batch). Per fold, beside the models: the mean
training stride and PCA with k components fitted on that fold's training strides (k in PCA_COMPONENTS and each
model's code size). A row is the mean +- std over folds of the per-fold figure (itself the mean over seeds), with
its code size: the numbers per stride a model encodes (latent dimensions plus the learned initial state) or a PCA
keeps. `--set KEY=VALUE` (repeatable, as the CLI's) changes every preset, to look for what closes the gap: such
rows are labelled `PRESET (KEY=VALUE, ...)` and their sweeps live in OUT/BY/PRESET+KEY=VALUE+.../foldK;
`--only-folds K` runs some folds only (to compare settings on one fold's validation people first). `--grid
KEY=V1,V2,...` (repeatable; hyper-parameters only, e.g. retime=0.06,0.12,0.2) trains every combination in the same
sweep as the seeds, one compiled step per fold (OUT/BY/PRESET+KEY=V1,V2,.../foldK): a row per combination, `PRESET
(..., KEY=V)`, and a row `PRESET (..., KEY chosen on valid)` of the combination with the lowest validation MAE on
each fold, as PCA's settings are chosen (experiments.warped_pca). Writes OUT/unseen_subjects_BY.{json,md,png}
(suffixed _foldsK and _KEY=VALUE... for such runs; --name NAME instead) and, with --results, experiments/results/
too. The table's name does not say which presets it holds: a call for other presets (or --baselines-only) under the
name of a table of others is refused before it trains; give it a --name of its own.

Fitted code (--refine-steps N, default 200 Adam steps or 10 with --refine-method gauss-newton; 0 skips it): each model
is also scored with every valid and test stride's code fitted to that stride by N steps on its reconstruction error
(jaxphysvae.refine), the decoder fixed, as PCA's projection fits its code: the difference to the encoder's code is
the amortisation gap, what remains against PCA is the decoder's. `--refine-parts s0,aux2` fits those parts of the
code only (of phy, aux1, aux2, s0; the others the encoder's), to see which part carries the gap; the table's name
then ends in _fitted_PARTS.

Learning curves (the stopping rule's check, docs/protocol.md): each model row also says how much the best validation
error (the mean over the row's members, from each fold's metrics.jsonl; experiments.sweeps.learning_curve) still fell
over the last fifth of the epochs, per fold and as mean +- std over folds: near 0 when the budget was long enough.

A model row lists its seeds and best epochs per fold (`seed_ids`, `best_epoch`), so that the tables of a model trained
in pieces (seed 0 on every fold, then other seeds one fold at a time) pool into one: experiments.pool_seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import time
from pathlib import Path

import numpy as np

from experiments import locomotion, report
from experiments.sweeps import TAIL, changed_label, changed_suffix, learning_curve, preset_sweep, quick_epochs
from jaxphysvae import presets
from jaxphysvae.config import apply_overrides
from jaxphysvae.data import raw
from jaxphysvae.refine import DEFAULT_STEPS, METHODS, PARTS, check_parts, refine
from jaxphysvae.sweep import grid_members, load_member, parse_grid
from jaxphysvae.errors import ConfigError, DataError

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_RAW_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "lencioni2019_raw_subset"
PRESETS = ("locomotion-phys-vae-takeishi", "locomotion-phys-vae", "locomotion-nf", "locomotion-attnf",
           "locomotion-attnf-seq", "locomotion-nn-only")
VALID_FRACTION = 0.2
PCA_COMPONENTS = (5, 15, 21, 23)  # 21 and 23: the code sizes of the models (Takeishi and nn-only; the others)
QUICK = dict(**presets.TOY_WIDTHS, batch_size=32, eval_batch_size=64)


def fold_splits(strides: raw.Strides, folds: int, by: str = "subject", seed: int = 0) -> list[dict[str, raw.Strides]]:
    """K folds of `strides` (from raw.read_strides): fold k's test split is group k of the subjects (by="subject")
    or strides (by="stride") permuted with `seed`; its valid split is the first VALID_FRACTION (at least one) of the
    remaining units in that permutation, its train split the rest. Strides keep the raw files' order in each split.

    Raises:
      DataError: an unknown `by`, fewer than 2 folds, or too few units to give every fold a train, valid and test
        unit.
    """
    if by == "subject":
        unit = strides.covariates["subject"]
    elif by == "stride":
        unit = np.arange(strides.num_sequences)
    else:
        raise DataError(f"unknown fold kind {by!r}; expected 'subject' or 'stride'")
    units = np.random.default_rng(seed).permutation(np.unique(unit))
    largest = -(-len(units) // folds) if folds > 0 else len(units)
    if folds < 2 or folds > len(units) or len(units) - largest < 2:
        raise DataError(f"cannot make {folds} folds by {by} from {len(units)} {by}s: every fold needs test, valid "
                        f"and train {by}s (at least 2 folds)")
    groups = np.array_split(units, folds)
    out = []
    for k, test in enumerate(groups):
        rest = np.concatenate([g for j, g in enumerate(groups) if j != k])
        n_valid = max(1, int(round(VALID_FRACTION * len(rest))))
        roles = {"train": rest[n_valid:], "valid": rest[:n_valid], "test": test}
        out.append({split: strides.subset(np.flatnonzero(np.isin(unit, members))) for split, members in roles.items()})
    return out


def fold_baselines(split: dict[str, raw.Strides], components=PCA_COMPONENTS) -> list[dict]:
    """The mean training stride and PCA with each number of `components` fitted on the fold's train strides, on its
    test strides (and, as "valid_mae", the MAE on its valid strides)."""
    test = locomotion.baselines(split["train"].x, split["test"].x, components)
    valid = locomotion.baselines(split["train"].x, split["valid"].x, components)
    return [{**t, "valid_mae": v["mae"]} for t, v in zip(test, valid) if t["model"] != "all zeros"]


def preset_code_size(preset: str, sets: tuple[str, ...] = ()) -> int:
    """The code size (locomotion.code_size) of `preset` changed by the `key=value` strings `sets`."""
    config, _ = apply_overrides(*presets.get(preset), list(sets))
    return locomotion.code_size(config.to_json())


SUMMARY_KEYS = ("mae", "rmse", "sse_per_seq", "valid_mae", "fitted_mae", "fitted_valid_mae", "tail_drop")


def is_model(row: dict) -> bool:
    """Whether a table's row is a trained model's (it has seeds), not a baseline's."""
    return "seeds" in row


def summary(name: str, per_fold: list[dict], code: int | None, extra: dict | None = None,
            keys: tuple[str, ...] = SUMMARY_KEYS) -> dict:
    """A table row: the per-fold figures and, for each of `keys` that every fold has, its mean and std over folds."""
    row = {"model": name, "code_size": code, "folds": per_fold, **(extra or {})}
    for key in keys:
        if any(key not in f for f in per_fold):
            continue
        values = np.array([f[key] for f in per_fold])
        row[key], row[f"{key}_std"] = float(values.mean()), float(values.std())
    return row


def check_fold_ids(folds: int, only: list[int] | None) -> list[int]:
    """The indices of the folds to run: `only`, or every fold. Raises DataError for an index that is not a fold."""
    fold_ids = list(range(folds)) if only is None else list(only)
    if not fold_ids or any(not 0 <= k < folds for k in fold_ids):
        raise DataError(f"folds to run {fold_ids}: expected indices in 0..{folds - 1}")
    return fold_ids


def fitted_code_mae(target: Path, member: int, datasets: dict, steps: int, method: str = "adam",
                    parts: tuple[str, ...] = PARTS) -> dict:
    """MAE on the valid and test strides of member `member` of the sweep in `target` (trained on `datasets`) when
    each stride's code (its `parts`, the rest the encoder's) is fitted to it by `steps` steps of `method`
    (jaxphysvae.refine) instead of taken from the encoder."""
    _, _, model, _, params, _, _ = load_member(target, member, splits=datasets)
    mae = {}
    for split in ("valid", "test"):
        x = datasets[split].x
        fitted = refine(model, params, x, steps=steps, method=method, parts=parts)["x_PAB"]
        mae[split] = float(np.abs(fitted - x).mean())
    return {"fitted_mae": mae["test"], "fitted_valid_mae": mae["valid"]}


def grid_items(grid: dict[str, list]) -> tuple[str, ...]:
    """`grid` as `KEY=V1,V2,...` strings (its sweeps' directory and its table's name say them)."""
    return tuple(f"{key}={','.join(f'{v:g}' for v in values)}" for key, values in grid.items())


def grid_combinations(grid: dict[str, list]) -> list[dict[str, float]]:
    """Every combination of `grid`'s values ([{}] for no grid), in the order of its rows."""
    return [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]


def chosen_label(preset: str, sets: tuple[str, ...], grid: dict[str, list]) -> str:
    """The row of the grid's combination chosen on each fold's validation people."""
    return changed_label(preset, (*sets, f"{'/'.join(grid)} chosen on valid"))


def model_labels(preset: str, sets: tuple[str, ...], grid: dict[str, list]) -> list[str]:
    """The table's rows of `preset`: one per combination of `grid` (`PRESET (sets, KEY=V)`) and, for a grid of
    several combinations, the chosen one's."""
    combos = grid_combinations(grid)
    labels = [changed_label(preset, (*sets, *(f"{k}={v:g}" for k, v in c.items()))) for c in combos]
    return labels + ([chosen_label(preset, sets, grid)] if len(combos) > 1 else [])


def run(strides: raw.Strides, out: Path, folds: int, by: str, split_seed: int, model_presets, seeds: list[int],
        epochs: int | None, quick: bool = False, sets: tuple[str, ...] = (), only: list[int] | None = None,
        refine_steps: int = 0, refine_method: str = "adam", grid: dict[str, list] | None = None,
        refine_parts: tuple[str, ...] = PARTS) -> dict:
    """Every fold's baselines and, unless `model_presets` is empty, every preset's sweep (each preset changed by the
    `key=value` strings `sets`); the table's rows. `only`: the indices of the folds to run (default: all), e.g. one
    fold to compare settings on its validation people before running them on every fold. `refine_steps` > 0: each
    model's rows also give the MAE with every stride's code (its `refine_parts`) fitted to it by that many steps of
    `refine_method` (`fitted_code_mae`). `grid`: hyper-parameter values ({key: [values]}) swept with the seeds: a
    row per combination (each fold's figure the mean over its seeds) and, for several, a row of the combination with
    the lowest validation MAE on each fold ("chosen": the combination per fold).

    Raises:
      DataError: an index in `only` that is not a fold.
    """
    grid = dict(grid or {})
    combos = grid_combinations(grid)
    fold_ids = check_fold_ids(folds, only)
    splits = [fold_splits(strides, folds, by, split_seed)[k] for k in fold_ids]
    started = time.time()
    # PCA at every model's code size too, so that each model has a linear baseline keeping as many numbers per stride
    codes = {preset_code_size(preset, sets) for preset in model_presets}
    baseline_folds = [fold_baselines(s, sorted(set(PCA_COMPONENTS) | codes)) for s in splits]
    rows = [summary(r["model"], [fold[i] for fold in baseline_folds], r.get("code_size"))
            for i, r in enumerate(baseline_folds[0])]
    for preset in model_presets:
        # per combination of the grid: each fold's figures, seeds, best epochs and statuses
        per_fold, seed_ids, best, statuses = ([[] for _ in combos] for _ in range(4))
        seconds = 0.0
        for k, split in zip(fold_ids, splits):
            target = out / by / "+".join((preset, *sets, *grid_items(grid))) / f"fold{k}"
            datasets = {name: s.dataset(name) for name, s in split.items()}
            result = preset_sweep(preset, {"seed": seeds, **grid}, target, epochs, QUICK if quick else None,
                                  datasets, progress=not quick, sets=sets)
            seconds += result["seconds"]
            for c, combo in enumerate(combos):
                ids = [i for i, m in enumerate(result["members"])
                       if all(np.isclose(m[key], value, rtol=1e-6) for key, value in combo.items())]
                members = [result["members"][i] for i in ids]
                figures = {**{key: float(np.mean([m["test"][key] for m in members]))
                              for key in ("mae", "rmse", "sse_per_seq")},
                           "valid_mae": float(np.mean([m["valid"]["mae"] for m in members]))}
                curve = learning_curve(target, ids)
                if curve and curve["tail_drop"] is not None:
                    figures["tail_drop"] = curve["tail_drop"]
                if refine_steps:
                    fitted = [fitted_code_mae(target, i, datasets, refine_steps, refine_method, refine_parts)
                              for i in ids]
                    figures.update({key: float(np.mean([f[key] for f in fitted])) for key in fitted[0]})
                per_fold[c].append(figures)
                seed_ids[c].append([int(m["seed"]) for m in members])
                best[c].append([m["best_epoch"] for m in members])
                statuses[c].append([m["status"] for m in members])
        code = locomotion.code_size(result["config"])
        common = {"epochs": result["epochs"], "seeds": len(seeds), "seconds": seconds}
        labels = model_labels(preset, sets, grid)
        for c, combo in enumerate(combos):
            rows.append(summary(labels[c], per_fold[c], code,
                                {**common, "seed_ids": seed_ids[c], "best_epoch": best[c],
                                 **({"hparams": combo} if grid else {}),
                                 "diverged": sum(s != "completed" for fold in statuses[c] for s in fold)}))
        if len(combos) > 1:  # each fold's combination with the lowest validation MAE (over its seeds)
            valid = np.array([[f["valid_mae"] for f in figures] for figures in per_fold])  # (combination, fold)
            pick = np.argmin(np.where(np.isfinite(valid), valid, np.inf), axis=0).tolist()
            rows.append(summary(chosen_label(preset, sets, grid), [per_fold[c][f] for f, c in enumerate(pick)], code,
                                {**common, "seed_ids": [seed_ids[c][f] for f, c in enumerate(pick)],
                                 "best_epoch": [best[c][f] for f, c in enumerate(pick)],
                                 "chosen": [combos[c] for c in pick],
                                 "diverged": sum(s != "completed"
                                                 for f, c in enumerate(pick) for s in statuses[c][f])}))
    sizes = [{split: s.num_sequences for split, s in fold.items()} for fold in splits]
    people = [{split: sorted(np.unique(s.covariates["subject"]).astype(int).tolist()) for split, s in fold.items()}
              for fold in splits]
    partial = {"refine_parts": list(refine_parts)} if refine_steps and tuple(refine_parts) != PARTS else {}
    return {"refine_steps": refine_steps, "refine_method": refine_method, **partial, "by": by, "folds": folds,
            "fold_ids": fold_ids, "split_seed": split_seed,
            "source": strides.source,
            "strides": sizes, "subjects": people, "rows": rows, "seconds": time.time() - started}


def table_name(by: str, folds: int, only: list[int] | None, sets: tuple[str, ...],
               grid: dict[str, list] | None = None, refine_parts: tuple[str, ...] = PARTS) -> str:
    """unseen_subjects_BY, with _foldsK-K when only some folds ran, _KEY=VALUE+... for changed presets and a grid,
    and _fitted_PART+PART for codes fitted in part, so that a screen never overwrites the table of every fold."""
    name = f"unseen_subjects_{by}"
    if only is not None and sorted(set(only)) != list(range(folds)):
        name += "_folds" + "-".join(map(str, only))
    name += changed_suffix((*sets, *grid_items(grid or {})))
    return name + ("" if tuple(refine_parts) == PARTS else "_fitted_" + "+".join(refine_parts))


def markdown(result: dict) -> str:
    by, k = result["by"], result["folds"]
    ids = result.get("fold_ids", list(range(k)))
    which = f"{k} folds" if len(ids) == k else f"fold{'s' * (len(ids) > 1)} {', '.join(map(str, ids))} of {k}"
    sizes = ", ".join(f"{f['train']}/{f['valid']}/{f['test']}" for f in result["strides"])
    steps = result.get("refine_steps", 0)
    parts = result.get("refine_parts")
    method = result.get("refine_method", "adam")
    fitted = (f"; a fitted code: {steps} {method} step{'s' * (steps != 1)} per stride from the encoder's "
              f"(jaxphysvae.refine)" + (f", fitting {', '.join(parts)} only" if parts else "") if steps else "")
    lines = [f"Locomotion, {which} by {by} ({result['source']}; train/valid/test strides per fold: {sizes}). "
             f"Errors in radians, mean +- std over folds (each fold: the mean over its seeds); the valid MAE (the "
             f"fold's validation people) is what settings are chosen on" + fitted + "; the rows of a grid share one "
             "sweep per fold and its training time:", "",
             f"| model | code size | epochs | seeds | diverged | training (s, all folds) | best valid error still "
             f"falling (last {100 * TAIL:.0f} % of epochs) | valid MAE | test MAE | RMSE | squared error per stride "
             f"| valid MAE, fitted code | test MAE, fitted code | test MAE per fold |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        cells = " | ".join(f"{r[key]:.4f} +- {r[key + '_std']:.4f}" if key in r else "-"
                           for key in ("valid_mae", "mae", "rmse", "sse_per_seq", "fitted_valid_mae", "fitted_mae"))
        per_fold = ", ".join(f"{f['mae']:.4f}" for f in r["folds"])
        code = "-" if r["code_size"] is None else str(r["code_size"])
        seconds = f"{r['seconds']:.0f}" if "seconds" in r else "-"
        falling = f"{100 * r['tail_drop']:.1f} +- {100 * r['tail_drop_std']:.1f} %" if "tail_drop" in r else "-"
        model = r["model"] + (": " + ", ".join("/".join(f"{v:g}" for v in c.values()) for c in r["chosen"])
                              if "chosen" in r else "")
        lines.append(f"| {model} | {code} | {r.get('epochs', '-')} | {r.get('seeds', '-')} | "
                     f"{r.get('diverged', '-')} | {seconds} | {falling} | {cells} | {per_fold} |")
    return "\n".join(lines) + "\n"


def figure(result: dict, path: Path) -> None:
    """Test MAE per fold, one line per model (baselines dashed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9.5, 4))
    folds = np.array(result.get("fold_ids", range(result["folds"])))
    for r in result["rows"]:
        style = "-" if "epochs" in r else "--"  # a trained model, or a baseline
        ax.plot(folds, [f["mae"] for f in r["folds"]], style, marker="o", label=r["model"])
    ax.set_xlabel(f"fold (test {'people' if result['by'] == 'subject' else 'strides'})")
    ax.set_xticks(folds)
    ax.set_ylabel("test MAE (rad)")
    ax.set_yscale("log")
    ax.set_title(f"Locomotion, folds by {result['by']}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: the lines stay visible
    fig.tight_layout()
    report.save_figure(fig, path, dpi=120)


def add_fold_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming the raw files and the folds: --raw-dir, --by, --folds, --split-seed (shared with
    experiments.warped_pca, whose folds are these)."""
    parser.add_argument("--raw-dir", default=str(DEFAULT_RAW_DIR), help="directory of SubjectN.mat raw files")
    parser.add_argument("--by", choices=("subject", "stride"), default="subject")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--split-seed", type=int, default=0)


def read_raw_strides(parser: argparse.ArgumentParser, raw_dir: str) -> raw.Strides:
    """The walking strides of the raw files in `raw_dir`, their source named relative to its parent; a missing
    directory is a usage error of `parser`."""
    if not Path(raw_dir).is_dir():
        parser.error(f"--raw-dir {raw_dir}: no such directory (`jaxphysvae data download` fetches the raw files)")
    strides = raw.read_strides(raw_dir)
    return dataclasses.replace(strides, source=strides.source.replace(str(Path(raw_dir).parent) + os.sep, ""))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fold_arguments(parser)
    parser.add_argument("--out", default="runs/unseen_subjects", help="directory of the sweeps and the tables")
    parser.add_argument("--only-folds", default=None, metavar="K,K",
                        help="run and tabulate these folds only (indices from 0), e.g. to compare settings on one "
                             "fold's validation people")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated locomotion presets")
    parser.add_argument("--baselines-only", action="store_true", help="no training: the baselines' table only")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per preset (default: the preset's)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="hyper-parameter values swept with the seeds (repeatable), a row per combination and "
                             "one of the combination chosen on each fold's validation people")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change every preset (repeatable; the keys of `jaxphysvae train --set`)")
    parser.add_argument("--refine-steps", type=int, default=None, metavar="N",
                        help="also score each model with every stride's code fitted by N steps of --refine-method "
                             "(default 200 Adam, 10 Gauss-Newton; 0: skip)")
    parser.add_argument("--refine-method", choices=METHODS, default="adam",
                        help="how the fitted code is found (jaxphysvae.refine)")
    parser.add_argument("--refine-parts", default=",".join(PARTS), metavar="PART,PART",
                        help=f"the parts of the code fitted (of {', '.join(PARTS)}; default all), the others the "
                             "encoder's")
    parser.add_argument("--quick", action="store_true", help="toy widths and 2 epochs (the test's)")
    parser.add_argument("--results", action="store_true", help="also write experiments/results/unseen_subjects_*")
    parser.add_argument("--name", default=None, type=report.file_name,
                        help="the tables' file name (default unseen_subjects_BY[_foldsK][_KEY=VALUE...]): to keep a "
                             "run of other presets beside, not over, an earlier table")
    args = parser.parse_args(argv)
    model_presets = [] if args.baselines_only else [p for p in args.presets.split(",") if p]
    for name in model_presets:
        if not name.startswith("locomotion-") or name not in presets.PRESETS:
            parser.error(f"--presets: {name!r} is not a locomotion preset")
        try:
            apply_overrides(*presets.get(name), args.set)
        except ConfigError as e:
            parser.error(f"--set: {e}")
    try:
        grid = parse_grid(args.grid)
        grid_members({}, grid)  # the sweep's own checks (hyper-parameters only, each with values), before training
    except ConfigError as e:
        parser.error(str(e))
    set_keys = {item.split("=", 1)[0].strip() for item in args.set}
    for key in grid:
        if key == "seed":
            parser.error("--grid seed: give the seeds as --seeds")
        if key in set_keys:
            parser.error(f"--grid {key}: also given by --set; give it one way")
    try:
        only = (None if args.only_folds is None
                else check_fold_ids(args.folds, [int(k) for k in args.only_folds.split(",")]))
    except (ValueError, DataError) as e:
        parser.error(f"--only-folds {args.only_folds}: {e}")
    refine_steps = DEFAULT_STEPS[args.refine_method] if args.refine_steps is None else args.refine_steps
    if refine_steps < 0:
        parser.error(f"--refine-steps {refine_steps}: expected a number of steps >= 0")
    try:
        refine_parts = check_parts(args.refine_parts)
    except ConfigError as e:
        parser.error(f"--refine-parts: {e}")
    epochs = quick_epochs(args.quick, args.epochs)
    out = Path(args.out)
    name = args.name or table_name(args.by, args.folds, only, tuple(args.set), grid,
                                   refine_parts if refine_steps else PARTS)
    targets = [out] + ([RESULTS] if args.results else [])
    report.check_same_models(name, targets, [label for p in model_presets
                                             for label in model_labels(p, tuple(args.set), grid)],
                             is_model)
    strides = read_raw_strides(parser, args.raw_dir)
    try:
        result = run(strides, out, args.folds, args.by, args.split_seed, model_presets,
                     [int(s) for s in args.seeds.split(",")], epochs, args.quick, tuple(args.set), only,
                     refine_steps, args.refine_method, grid, refine_parts)
    except DataError as e:
        parser.error(str(e))
    text = markdown(result)
    report.write(name, result, text, targets, lambda path: figure(result, path))
    print(text)
    return result


if __name__ == "__main__":
    from experiments.command import run_command
    run_command(main)
