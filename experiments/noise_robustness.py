"""Robustness to noise: test error of trained models when their encoder sees corrupted strides, over seeds.

    python -m experiments.noise_robustness SWEEP_DIR... [RUN_DIR...]          # noise at evaluation only
    python -m experiments.noise_robustness --train PRESET [--seeds 0,1,2] [--epochs N]   # noise in training too
    python -m experiments.noise_robustness --train PRESET --kinds feature --seeds 0    # the paper's claim only
    python -m experiments.noise_robustness SWEEPS/PRESET/KIND OTHER/PRESET/KIND       # --train seeds pooled
    python -m experiments.noise_robustness TABLE.json OTHER_TABLE.json --out POOLED   # tables' seeds pooled
    python -m experiments.noise_robustness --train PRESET --quick --sweeps /tmp/n --out /tmp/n/table   # smoke run

Every noise model of jaxphysvae.noise (Gaussian, impulse, missing segment, the NF paper's feature noise, feature
dropout) at LEVELS (0 to 25 %, the attentive NF-VAE paper's range); targets are the clean strides; posterior mean;
noise drawn per sequence from a fixed key. A sweep directory is one model whose members (its seeds) give the mean
+- std; a run directory is one seed. Each model is evaluated as it was trained: the NF presets trained with 10 % x
10 % feature noise, the phys-VAE columns without noise. The table states, per model, whether its error falls as
feature noise grows (the paper's claim). With --train PRESET (repeatable), the preset is also trained with each
noise kind, one vectorised sweep over level x seed per kind (SWEEPS/PRESET/KIND, resumable; long: a GPU's job for
the locomotion models), and each member is evaluated with the noise it was trained with: the "noise in training
and evaluation" rows. A --train sweep given as a directory is evaluated the same way, and the sweeps of one model
pool their seeds: seeds trained in separate calls (`--seeds 1 --sweeps OTHER`, on another machine or in another
session) make one row. Earlier tables of this command (OUT.json, which keep each seed's errors) pool their seeds
the same way, without the sweeps. --kinds K,... keeps the listed noise kinds only (training and evaluation). Writes
OUT.{json,md,png} (default experiments/results/noise_robustness).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from experiments import report
from experiments.locomotion import sweep_label
from experiments.sweeps import QUICK_EPOCHS, preset_configuration, preset_sweep, quick_epochs
from jaxphysvae import files, presets
from jaxphysvae.config import HParams
from jaxphysvae.errors import ConfigError
from jaxphysvae.noise import FEATURE_NOISE, INPUT_NOISE
from jaxphysvae.sweep import CONFIG_FILE, load_any
from jaxphysvae.train import evaluate

RESULTS = Path(__file__).resolve().parent / "results"
LEVELS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)
KINDS = (*INPUT_NOISE, *FEATURE_NOISE)


def seed_curves(path: str, levels=LEVELS, kinds=KINDS, split: str = "test") -> dict:
    """{kind: [test MAE at each level]} of one trained model (a run directory or SWEEP_DIR:M)."""
    config, hparams, _, fns, params, splits, _ = load_any(path)
    out = {}
    for kind in kinds:
        out[kind] = []
        for level in levels:
            metrics, _ = evaluate(fns, params, splits[split], hparams, config.schedule.eval_batch_size,
                                  key=jax.random.key(0), noise_kind=kind if level else "none", noise_level=level)
            out[kind].append(float(metrics["mae"]))
    return out


def members(directory: str) -> tuple[str, list[str], list[int]]:
    """(model name, the paths of its seeds, their seeds): every member of a sweep directory (named by its preset and
    what differs from it), or the run directory itself."""
    d = Path(directory)
    if (d / "sweep.json").is_file():
        result = files.read_json(d / "sweep.json", "sweep result")
        return (sweep_label(result, d.name), [f"{d}:{m}" for m in range(len(result["members"]))],
                [row["seed"] for row in result["members"]])
    record = files.read_json(d / "config.json", "run configuration (config.json)")
    return record.get("preset") or d.name, [str(d)], [record["seed"]]


def model_curves(directory: str, levels=LEVELS, kinds=KINDS) -> dict:
    """Per kind and level, the mean and std over the model's seeds of the test MAE, and each seed's values (in the
    order of the row's `seed_ids`)."""
    name, paths, seeds = members(directory)
    per_seed = [seed_curves(p, levels, kinds) for p in paths]
    curves = {kind: [_point(level, [s[kind][i] for s in per_seed]) for i, level in enumerate(levels)]
              for kind in kinds}
    return {"model": name, "run": str(directory), "seeds": len(paths), "seed_ids": seeds, "curves": curves,
            "feature_noise_trend": feature_trend(curves.get("feature"))}


def trained_with_noise(directory: str) -> bool:
    """Whether `directory` is a sweep whose members were trained at several noise levels (a --train sweep, over
    level x seed): each member is then evaluated with the noise it was trained with, not at every level."""
    path = Path(directory) / "sweep.json"
    return path.is_file() and len({m["noise"] for m in json.loads(path.read_text())["members"]}) > 1


def trained_label(result: dict) -> str:
    """The model of a --train sweep: its preset and what else differs from it (the noise and the seed aside)."""
    preset = result.get("preset") or "?"
    changes = {}
    if preset in presets.PRESETS:
        config = {k: v for k, v in result["config"].items() if k != "noise"}
        member = {k: v for k, v in result["members"][0].items() if k in HParams._fields and k not in ("noise", "seed")}
        changes = presets.differences(preset, config, member)
    return ", ".join([f"{preset}, trained with the noise it is evaluated with"] +
                     [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in changes.items()])


def _trained_members(target: Path, result: dict, levels) -> list[tuple[int, float, int]]:
    """(member, the level of LEVELS it was trained at, its seed) of each member of --train sweep `target`."""
    members = []
    for m, row in enumerate(result["members"]):
        level = next((lv for lv in levels if np.isclose(row["noise"], lv, rtol=1e-6, atol=1e-9)), None)
        if level is None:
            raise ConfigError(f"{target}: member {m} was trained at noise {row['noise']:g}, not one of the levels "
                              f"{', '.join(f'{lv:g}' for lv in levels)}")
        members.append((m, level, row["seed"]))
    return members


def pooled_trained_curves(directories: list[str], levels=LEVELS, kinds=KINDS) -> list[dict]:
    """The "noise in training and evaluation" rows of --train sweeps given as directories: sweeps of one model (the
    same preset and changes) pool their seeds, so seeds trained in separate calls (on other machines, in other
    sessions: `--train P --seeds 1 --sweeps OTHER`) make one mean +- std. A clean member (level 0, trained without
    noise: the same model whatever the kind) serves every kind of its model, so a kind's sweep may leave level 0 to
    a sweep of another kind (`trained_curves` trains it once per seed); a sweep of a kind not in `kinds` gives its
    clean members only. A seed twice at one level of a kind, a model whose kinds or levels lack some seeds, or a sweep
    of a kind not in `kinds` without clean members is refused by name, before any evaluation."""
    zero = next((lv for lv in levels if lv == 0), None)
    models: dict[str, dict] = {}
    for d in directories:
        result = files.read_json(Path(d) / "sweep.json", "sweep result")
        kind = result["config"]["noise"]
        clean = [(m, row["seed"]) for m, row in enumerate(result["members"]) if zero is not None and row["noise"] == 0]
        if kind not in kinds and not clean:
            raise ConfigError(f"{d}: trained with {kind} noise, not one of the kinds asked for ({', '.join(kinds)}), "
                              "and without a clean member (level 0) to share with them")
        model = models.setdefault(trained_label(result), {"sweeps": [], "seeds": {}, "clean": {}, "given": []})
        model["given"].append(Path(d))
        for m, seed in clean:
            model["clean"].setdefault(seed, (Path(d), m))
        if kind not in kinds:
            continue
        entries = _trained_members(Path(d), result, levels)
        seeds = model["seeds"].setdefault(kind, {level: set() for level in levels})
        for _, level, seed in entries:
            if seed in seeds[level]:
                raise ConfigError(f"{d}: seed {seed} at {kind} noise {level:g} is also in another of the sweeps "
                                  f"given ({', '.join(str(s) for s, _, _ in model['sweeps']) or d}): give each "
                                  "seed once")
            seeds[level].add(seed)
        model["sweeps"].append((Path(d), kind, entries))
    rows = []
    for name, model in models.items():
        if not model["seeds"]:  # clean members only: no kind asked for
            continue
        every = set().union(*(s for by_level in model["seeds"].values() for s in by_level.values()))
        for kind, by_level in model["seeds"].items():
            for level, seeds in by_level.items():
                have = seeds | set(model["clean"]) if level == zero else seeds
                if not every <= have:
                    raise ConfigError(f"{name}: {kind} noise {level:g} has seeds {sorted(have & every)}, the model "
                                      f"has {sorted(every)} ({', '.join(str(p) for p in model['given'])}): train the "
                                      "missing ones" + (" or give a sweep with their clean members" if level == zero
                                                        else ""))
        errors = {kind: {level: {} for level in levels} for kind in model["seeds"]}
        for target, kind, entries in model["sweeps"]:  # each member with the noise it was trained with
            for m, level, seed in entries:
                errors[kind][level][seed] = seed_curves(f"{target}:{m}", (level,), (kind,))[kind][0]
        shared = {}  # seed -> the test error of its clean member, for the kinds that left level 0 to another sweep
        for kind, by_level in errors.items():
            for seed in sorted(every - set(by_level[zero])) if zero is not None else ():
                if seed not in shared:
                    target, m = model["clean"][seed]
                    shared[seed] = seed_curves(f"{target}:{m}", (zero,), (kind,))[kind][0]
                by_level[zero][seed] = shared[seed]
        curves = {kind: [_point(level, [by_level[level][s] for s in sorted(every)]) for level in levels]
                  for kind, by_level in errors.items()}
        rows.append({"model": name, "run": ", ".join(str(p) for p in model["given"]), "seeds": len(every),
                     "seed_ids": sorted(every), "curves": curves,
                     "feature_noise_trend": feature_trend(curves.get("feature"))})
    if directories and not rows:
        raise ConfigError(f"{', '.join(directories)}: none trained with the kinds asked for ({', '.join(kinds)})")
    return rows


def merged_results(paths: list[str], kinds=KINDS) -> list[dict]:
    """The rows of earlier calls' tables (their OUT.json), their seeds pooled per model and noise kind: seeds trained
    and evaluated in separate calls, whose sweeps are no longer at hand (another machine, another session), make one
    mean +- std from the per-seed errors the tables keep. A model's kinds with the same seeds share a row; a kind
    with other seeds (e.g. 3 seeds of one kind, 1 of another) gets a row of its own; kinds not in `kinds` are left
    out. A file that is not such a table, a row without its seeds (`seed_ids`), other levels for one model's kind,
    or a seed twice for one kind is refused by name."""
    models: dict[str, dict] = {}  # model -> {"given": paths, "kinds": {kind: {"levels", "seeds": {seed: (maes, path)}}
    for path in paths:
        stored = files.read_json(Path(path), "noise robustness table", list)
        if not all(isinstance(r, dict) and {"model", "curves"} <= set(r) for r in stored):
            raise ConfigError(f"{path}: not a table of this command (a list of rows with model and curves)")
        for r in stored:
            if "seed_ids" not in r:
                raise ConfigError(f"{path}: row {r['model']!r} does not record its seeds (seed_ids), so its seeds "
                                  "cannot be pooled with others; evaluate its sweeps again to write them")
            model = models.setdefault(r["model"], {"given": [], "kinds": {}})
            if path not in model["given"]:
                model["given"].append(path)
            for kind, points in ((k, v) for k, v in r["curves"].items() if k in kinds):
                if not all(isinstance(p, dict) and "level" in p and len(p.get("per_seed", ())) == len(r["seed_ids"])
                           for p in points):
                    raise ConfigError(f"{path}: {r['model']!r}, {kind} noise: each level needs one error per seed "
                                      f"({len(r['seed_ids'])}: {r['seed_ids']})")
                levels = [p["level"] for p in points]
                entry = model["kinds"].setdefault(kind, {"levels": levels, "seeds": {}})
                if len(entry["levels"]) != len(levels) or not np.allclose(entry["levels"], levels, rtol=0, atol=1e-9):
                    raise ConfigError(f"{path}: {r['model']!r}, {kind} noise at levels {levels}, other tables given "
                                      f"have it at {entry['levels']}: pool tables of the same levels")
                for i, seed in enumerate(r["seed_ids"]):
                    if seed in entry["seeds"]:
                        raise ConfigError(f"{path}: {r['model']!r}, seed {seed} of {kind} noise is also in "
                                          f"{entry['seeds'][seed][1]}: give each seed once")
                    entry["seeds"][seed] = ([p["per_seed"][i] for p in points], path)
    rows = []
    for name, model in models.items():
        by_seeds: dict[tuple, dict] = {}  # the kinds with the same seeds share a row
        for kind, entry in model["kinds"].items():
            seeds = tuple(sorted(entry["seeds"]))
            points = [_point(level, [entry["seeds"][s][0][i] for s in seeds])
                      for i, level in enumerate(entry["levels"])]
            by_seeds.setdefault(seeds, {})[kind] = points
        for seeds, curves in by_seeds.items():
            rows.append({"model": name, "run": ", ".join(model["given"]), "seeds": len(seeds), "seed_ids": list(seeds),
                         "curves": curves, "feature_noise_trend": feature_trend(curves.get("feature"))})
    if paths and not rows:
        raise ConfigError(f"{', '.join(paths)}: no rows with the kinds asked for ({', '.join(kinds)})")
    return rows


def _point(level: float, values: list[float]) -> dict:
    return {"level": level, "mae": float(np.mean(values)), "mae_std": float(np.std(values)), "per_seed": values}


def trained_curves(preset: str, seeds: list[int], sweeps: Path, epochs: int | None = None, levels=LEVELS,
                   kinds=KINDS, changes: dict | None = None, progress: bool = True) -> dict:
    """Per noise kind, `preset` trained at every level (one sweep over level x seed, SWEEPS/PRESET/KIND) and each
    member evaluated on the test split with the noise it was trained with (`pooled_trained_curves` of those
    sweeps); mean and std over seeds per level. The clean models (level 0) are trained once per seed, in the first
    kind's sweep, or not at all when a finished sweep of another kind in SWEEPS/PRESET has them (the same
    configuration and hyper-parameters, every seed); a sweep already begun keeps its levels. `changes`: Config
    changes (the tests' small models)."""
    changes = changes or {}
    config, base = preset_configuration(preset, changes, (), epochs)
    clean = clean_sweep(sweeps / preset, config, base, seeds)
    targets = []
    for kind in kinds:
        target = sweeps / preset / kind
        kind_levels = _begun_levels(target) or [lv for lv in levels if lv != 0 or clean is None]
        preset_sweep(preset, {"noise": kind_levels, "seed": seeds}, target, epochs, {"noise": kind, **changes},
                     progress=progress)
        if clean is None and 0 in kind_levels:
            clean = target
        targets.append(target)
    given = targets + ([clean] if clean is not None and clean not in targets else [])
    (row,) = pooled_trained_curves([str(t) for t in given], levels, kinds)
    return row


def _begun_levels(target: Path) -> list[float] | None:
    """The noise levels of the sweep begun or finished in `target`, in order; None if there is none."""
    path = target / CONFIG_FILE
    if not path.is_file():
        return None
    return list(dict.fromkeys(m["noise"] for m in files.read_json(path, "sweep configuration")["members"]))


def clean_sweep(directory: Path, config, base: dict, seeds: list[int]) -> Path | None:
    """A finished --train sweep in `directory` (SWEEPS/PRESET, any noise kind) that holds a clean member (noise
    level 0) of `config` and `base` (the noise kind aside) for each of `seeds`, or None. Such a member is the model
    trained without noise, whatever its sweep's kind, so other kinds' sweeps need not train it again."""
    wanted = {k: v for k, v in json.loads(json.dumps(config.to_json())).items() if k != "noise"}
    same = lambda row: all(k in ("noise", "seed") or (k in row and np.isclose(row[k], v, rtol=1e-6, atol=0))
                           for k, v in base.items())
    for sub in sorted(p for p in directory.glob("*") if (p / "sweep.json").is_file()):
        result = files.read_json(sub / "sweep.json", "sweep result")
        if {k: v for k, v in result["config"].items() if k != "noise"} != wanted:
            continue
        if set(seeds) <= {row["seed"] for row in result["members"] if row["noise"] == 0 and same(row)}:
            return sub
    return None


def feature_trend(points: list[dict] | None) -> str | None:
    """Whether the mean error falls, rises or neither as feature noise grows from 0 to the largest level: 'falls'
    if the largest level's mean is below the clean one by more than the clean one's std over seeds, 'rises' if
    above by more than that, else 'flat'."""
    if not points:
        return None
    clean, last = points[0], points[-1]
    margin = clean["mae_std"]
    return "falls" if last["mae"] < clean["mae"] - margin else "rises" if last["mae"] > clean["mae"] + margin \
        else "flat"


def kinds_of(results: list[dict]) -> list[str]:
    """The noise kinds any result has curves for, in KINDS' order."""
    return [kind for kind in KINDS if any(kind in r["curves"] for r in results)]


def figure(results: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = kinds_of(results)
    ncol = max(1, min(len(results), len(kinds) - 1))  # legend columns under the panels
    fig, axes = plt.subplots(1, len(kinds), figsize=(max(3.3 * len(kinds), 4.5), 3.0 + 0.2 * -(-len(results) // ncol)),
                             sharey=True, squeeze=False, layout="constrained")
    axes = axes[0]
    handles = {}  # one legend entry and one colour per model, whichever kinds it has
    for ax, kind in zip(axes, kinds):
        for i, r in enumerate(results):
            if kind not in r["curves"]:
                continue
            pts = r["curves"][kind]
            label = f"{r['model']} ({r['seeds']} seed{'s' if r['seeds'] != 1 else ''})"
            handles[label] = ax.errorbar([100 * p["level"] for p in pts], [p["mae"] for p in pts],
                                         yerr=[p["mae_std"] for p in pts], fmt="o-", ms=3, capsize=2, color=f"C{i}")
        ax.set_title(kind)
        ax.set_xlabel("noise level (%)")
        ax.set_yscale("log")
    axes[0].set_ylabel("test MAE (rad)")
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=ncol, fontsize=6)
    report.save_figure(fig, path)


def markdown(results: list[dict]) -> str:
    kinds = kinds_of(results)
    levels = [p["level"] for p in next(iter(results[0]["curves"].values()))]
    lines = ["Test MAE (radians) under each noise model and level, the encoder seeing corrupted strides (targets "
             "clean; posterior mean); mean +- std over seeds.", "",
             "| model | seeds | noise | " + " | ".join(f"{100 * lv:g} %" for lv in levels) + " |",
             "|" + "---|" * (3 + len(levels))]
    for r in results:
        for kind in (k for k in kinds if k in r["curves"]):
            cells = " | ".join(f"{p['mae']:.4f} +- {p['mae_std']:.4f}" for p in r["curves"][kind])
            lines.append(f"| {r['model']} | {r['seeds']} | {kind} | {cells} |")
    trends = [f"{r['model']} {r['feature_noise_trend']}" for r in results if r["feature_noise_trend"]]
    if trends:
        lines += ["", "As feature noise grows from 0 to 25 %, the error: " + "; ".join(trends) +
                  " (a change larger than the clean error's std over seeds; with one seed, any change)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*",
                        help="sweep directories (their members are the seeds; a --train sweep's, level x seed), "
                        "run directories, or earlier tables of this command (OUT.json) whose seeds to pool")
    parser.add_argument("--train", action="append", default=[], metavar="PRESET",
                        help="also train PRESET with each noise kind at every level, and evaluate it with that noise")
    parser.add_argument("--seeds", default="0,1,2", help="the seeds of --train")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of --train (default: the preset's)")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated noise kinds, of {', '.join(KINDS)} (default: all)")
    parser.add_argument("--sweeps", default="runs/noise_training", help="directory of the --train sweeps")
    parser.add_argument("--quick", action="store_true",
                        help=f"--train with toy widths, {QUICK_EPOCHS} epochs (the test's; keep its --sweeps apart)")
    parser.add_argument("--out", default=str(RESULTS / "noise_robustness"),
                        help="the results' path without its suffix (default experiments/results/noise_robustness)")
    args = parser.parse_args(argv)
    if not args.runs and not args.train:
        parser.error("give trained models (sweep or run directories) or --train PRESET")
    tables = [d for d in args.runs if d.endswith(".json")]
    for d in args.runs:
        if d in tables:
            if not Path(d).is_file():
                parser.error(f"{d}: no such table")
        elif not ((Path(d) / "sweep.json").is_file() or (Path(d) / "config.json").is_file()):
            parser.error(f"{d}: neither a finished sweep (sweep.json), a run directory (config.json) nor a table "
                         "(OUT.json)")
    if args.quick and not args.train:
        parser.error("--quick makes --train's models small; give --train PRESET")
    for name in args.train:
        if name not in presets.PRESETS:
            parser.error(f"--train: unknown preset {name!r}")
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        parser.error(f"--kinds: {', '.join(unknown) or 'none given'}: not a noise kind (known: {', '.join(KINDS)})")
    trained = [d for d in args.runs if d not in tables and trained_with_noise(d)]
    results = [model_curves(d, kinds=kinds) for d in args.runs if d not in trained and d not in tables]
    results += pooled_trained_curves(trained, kinds=kinds)
    results += merged_results(tables, kinds)
    seeds = [int(s) for s in args.seeds.split(",")]
    epochs = quick_epochs(args.quick, args.epochs)
    results += [trained_curves(name, seeds, Path(args.sweeps), epochs, kinds=kinds,
                               changes=presets.TOY_WIDTHS if args.quick else None, progress=not args.quick)
                for name in args.train]
    out = Path(args.out)
    text = markdown(results)
    report.write(out.name, results, text, [out.parent], lambda path: figure(results, path))
    print(text)
    return results


if __name__ == "__main__":
    from experiments.command import run_command
    run_command(main)
