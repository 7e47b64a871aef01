"""One table of experiments.unseen_subjects from several runs of the same models on other seeds or other folds.

    python -m experiments.pool_seeds A.json B.json ... --name NAME [--out DIR] [--results]

A long model is often trained in pieces: seed 0 on every fold, then seeds 1 and 2 one fold at a time (`--only-folds K
--seeds 1,2`), each piece in a table of its own. Pooling them gives the table one call with every seed would have
written, as long as the pieces agree on what they measured: the same raw data, folds (count, split seed, `--by`, and
each fold's people) and fitted-code setting (`--refine-steps`, `--refine-method`, `--refine-parts`), and for a model (a
row with seeds, matched by its label) the same epochs and no seed counted twice on a fold. Anything else is refused,
naming it.

A model's figure on a fold is the mean of the pieces' figures on it weighted by their numbers of seeds: the mean over
every seed, as one run's. The learning curve's fall (`tail_drop`) is the seed-weighted mean of the pieces' falls, not
the fall of the pooled mean curve (close to it, as the pieces' curves are alike; recompute it from the sweeps'
metrics.jsonl where it matters). A baseline (a row without seeds: the mean stride, PCA) is computed from the fold's
strides alone, so pieces on the same fold must agree on it; the pooled table keeps it. Every model must cover every
fold of the pooled table; the rows of a grid's choice ("chosen on valid") are refused: pool the grid's own rows and
choose again. Writes OUT/NAME.{json,md,png} (the same record, table and figure as experiments.unseen_subjects) and,
with --results, experiments/results/ too; the record lists the tables it pooled.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments import report, unseen_subjects
from jaxphysvae import files
from jaxphysvae.errors import ConfigError

# what every piece must share (refine_parts is only in a table of codes fitted in part)
SAME = ("by", "folds", "split_seed", "source", "refine_steps", "refine_method", "refine_parts")


def pool(tables: dict[str, dict]) -> dict:
    """The pooled record of experiments.unseen_subjects `tables` ({name: record}, the names for the errors and the
    record's `pooled_from`): see the module's docstring.

    Raises:
      ConfigError: pieces that disagree on what they measured, a seed twice on a fold, a model missing on a fold, a
        grid's chosen row, or a model row that does not say its seeds (a table older than `seed_ids`: run its
        command again, which resumes its sweeps and rewrites it).
    """
    if not tables:
        raise ConfigError("no table to pool")
    first_name, first = next(iter(tables.items()))
    for name, table in tables.items():
        for key in SAME:
            if table.get(key) != first.get(key):
                raise ConfigError(f"{name}: {key} {table.get(key)!r} differs from {first_name}'s "
                                  f"{first.get(key)!r}; only runs of the same folds and settings pool")
    folds: dict[int, dict] = {}  # fold id -> {"strides", "subjects"} as the first table with it says
    baselines: dict[str, dict[int, dict]] = {}  # label -> fold id -> figures
    models: dict[str, dict] = {}  # label -> {"epochs", "code_size", "pieces": {fold id: [(figures, seeds, best)]}}
    seconds = 0.0
    for name, table in tables.items():
        ids = table.get("fold_ids", list(range(table["folds"])))
        for i, k in enumerate(ids):
            fold = {"strides": table["strides"][i], "subjects": table["subjects"][i]}
            if folds.setdefault(k, fold) != fold:
                raise ConfigError(f"{name}: fold {k}'s people or strides differ from another table's fold {k}")
        seconds += table.get("seconds", 0.0)
        for row in table["rows"]:
            label = row["model"]
            if not unseen_subjects.is_model(row):
                for k, figures in zip(ids, row["folds"]):
                    held = baselines.setdefault(label, {}).setdefault(k, figures)
                    if any(not np.isclose(held[key], figures[key], rtol=1e-9, atol=0.0)
                           for key in unseen_subjects.SUMMARY_KEYS if key in held and key in figures):
                        raise ConfigError(f"{name}: the baseline {label!r} differs on fold {k} from another table's; "
                                          f"the pieces do not hold the same strides")
                continue
            if "chosen" in row:
                raise ConfigError(f"{name}: {label!r} is a grid's choice per fold; pool the grid's rows and choose "
                                  f"again")
            if "seed_ids" not in row:
                raise ConfigError(f"{name}: the row {label!r} does not say its seeds (a table from before seed_ids); "
                                  f"run its command again to rewrite it")
            model = models.setdefault(label, {"epochs": row["epochs"], "code_size": row["code_size"],
                                              "hparams": row.get("hparams"), "seconds": 0.0, "diverged": 0,
                                              "pieces": {}})
            if row["epochs"] != model["epochs"]:
                raise ConfigError(f"{name}: {label!r} trained {row['epochs']} epochs, another piece "
                                  f"{model['epochs']}; only the same training pools")
            model["seconds"] += row.get("seconds", 0.0)
            model["diverged"] += row.get("diverged", 0)
            for k, figures, seeds, best in zip(ids, row["folds"], row["seed_ids"], row["best_epoch"]):
                pieces = model["pieces"].setdefault(k, [])
                counted = {s for _, held, _ in pieces for s in held}
                if counted & set(seeds):
                    raise ConfigError(f"{name}: {label!r} has seed(s) {sorted(counted & set(seeds))} on fold {k} "
                                      f"in another table too; a seed counts once")
                pieces.append((figures, list(seeds), list(best)))
    fold_ids = sorted(folds)
    rows = []
    for label, per_fold in baselines.items():
        missing = [k for k in fold_ids if k not in per_fold]
        if missing:
            raise ConfigError(f"the baseline {label!r} is missing on fold(s) {missing}")
        rows.append(unseen_subjects.summary(label, [per_fold[k] for k in fold_ids], per_fold[fold_ids[0]].get(
            "code_size")))
    for label, model in models.items():
        missing = [k for k in fold_ids if k not in model["pieces"]]
        if missing:
            raise ConfigError(f"{label!r} has no run on fold(s) {missing}; pool tables that cover the same folds")
        per_fold, seed_ids, best = [], [], []
        for k in fold_ids:
            pieces = model["pieces"][k]
            weights = np.array([len(seeds) for _, seeds, _ in pieces], dtype=float)
            keys = [key for key in pieces[0][0] if all(key in figures for figures, _, _ in pieces)]
            per_fold.append({key: float(np.average([figures[key] for figures, _, _ in pieces], weights=weights))
                             for key in keys})
            seed_ids.append([s for _, seeds, _ in pieces for s in seeds])
            best.append([b for _, _, epochs in pieces for b in epochs])
        counts = {len(s) for s in seed_ids}
        extra = {"epochs": model["epochs"], "seeds": counts.pop() if len(counts) == 1 else [len(s) for s in seed_ids],
                 "seconds": model["seconds"], "best_epoch": best, "seed_ids": seed_ids,
                 **({"hparams": model["hparams"]} if model["hparams"] is not None else {}),
                 "diverged": model["diverged"]}
        rows.append(unseen_subjects.summary(label, per_fold, model["code_size"], extra))
    return {**{key: first[key] for key in SAME if key in first}, "fold_ids": fold_ids,
            "strides": [folds[k]["strides"] for k in fold_ids], "subjects": [folds[k]["subjects"] for k in fold_ids],
            "rows": rows, "seconds": seconds, "pooled_from": list(tables)}


def markdown(result: dict) -> str:
    """experiments.unseen_subjects' table, with a line naming the pooled tables."""
    return (unseen_subjects.markdown(result) + "\nPooled (experiments.pool_seeds) from: "
            + ", ".join(result["pooled_from"]) + ".\n")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tables", nargs="+", help="the .json records of experiments.unseen_subjects to pool")
    parser.add_argument("--name", required=True, type=report.file_name, help="the pooled tables' file name")
    parser.add_argument("--out", default="runs/unseen_subjects", help="directory to write NAME.{json,md,png} in")
    parser.add_argument("--results", action="store_true", help="also write experiments/results/NAME.*")
    args = parser.parse_args(argv)
    paths = [Path(t) for t in args.tables]
    if len(set(map(str, paths))) != len(paths):
        parser.error("a table is given twice")
    tables = {path.name: files.read_json(path, "a table of experiments.unseen_subjects") for path in paths}
    if len(tables) != len(paths):
        parser.error("two tables have the same file name; copy one under another name")
    try:
        result = pool(tables)
    except (KeyError, TypeError) as e:
        raise ConfigError(f"not a table of experiments.unseen_subjects (no {e})") from None
    text = markdown(result)
    targets = [Path(args.out)] + ([unseen_subjects.RESULTS] if args.results else [])
    report.write(args.name, result, text, targets, lambda path: unseen_subjects.figure(result, path))
    print(text)
    return result


if __name__ == "__main__":
    from experiments.command import run_command
    run_command(main)
