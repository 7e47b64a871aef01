"""The `jaxphysvae` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jaxphysvae.errors import ConfigError, JaxPhysVAEError

EXIT_ERROR = 2  # bad input: a one-line error on stderr
REFINE_METHODS = ("adam", "gauss-newton")  # jaxphysvae.refine.METHODS, here without importing JAX
REFINE_PARTS = ("phy", "aux1", "aux2", "s0")  # jaxphysvae.refine.PARTS, likewise
EXIT_DIVERGED = 3  # training stopped on a non-finite loss; the best checkpoint and the last good state are kept


def _data_info(args) -> None:
    from jaxphysvae import data
    from jaxphysvae.data.arrays import is_path, load_file
    if args.name not in data.DATASETS and is_path(args.name):  # a user's file or directory
        splits = load_file(args.name, seed=args.seed)
        for split in data.SPLITS if args.split == "all" else (args.split,):
            print(splits[split].summary())
        return
    options = {}
    if args.name in data.GENERATED:
        options = {"seed": args.seed, "data_dir": args.data_dir}
        if args.n is not None:
            options["n"] = args.n
    elif args.data_dir is not None:
        options = {"directory": args.data_dir}
    splits = data.SPLITS if args.split == "all" else (args.split,)
    for split in splits:
        print(data.load(args.name, split, **options).summary())


def _data_build_locomotion(args) -> None:
    from jaxphysvae.data import raw
    strides = raw.read_strides(args.raw_dir)
    if args.published:
        if args.sizes is not None or args.by != "stride" or args.test_raw_dir is not None:
            raise ConfigError("--published builds the published split: it takes no --by, --sizes or --test-raw-dir")
        splits = raw.published_split(strides)
        out = raw.write_split(splits, args.out, columns=raw.PUBLISHED_COLUMNS)
    else:
        try:
            sizes = None if args.sizes is None else tuple(float(s) if "." in s else int(s)
                                                          for s in args.sizes.split(","))
        except ValueError:
            raise ConfigError(f"--sizes expects two counts or fractions such as 400,100 or 0.6,0.2, got "
                              f"{args.sizes!r}") from None
        test = None if args.test_raw_dir is None else raw.read_strides(args.test_raw_dir)
        splits = raw.split_strides(strides, by=args.by, sizes=sizes, seed=args.seed, test=test)
        out = raw.write_split(splits, args.out)
    print(f"{strides.num_sequences} walking strides from {strides.source}"
          + (f"; test split: {splits['test'].num_sequences} from {splits['test'].source}"
             if not args.published and args.test_raw_dir is not None else ""))
    for split, ds in splits.items():
        subjects = len(set(ds.covariates["subject"].tolist()))
        print(f"  {split}: {ds.num_sequences} strides of {subjects} subjects")
    print(f"written to {out}; load with jaxphysvae.data.load('locomotion', split, directory='{out}')")


def _data_download(args) -> None:
    from jaxphysvae.data import download
    paths = download.download(args.out)
    print(f"{len(paths)} files in {args.out}")


def _hparams_and_config(args):
    """The preset as a template: then --data and --physics (which replace its data set and physics), --epochs, and
    --set, in this order."""
    from jaxphysvae import presets
    from jaxphysvae.config import HParams, apply_overrides
    config, hparams = presets.get(args.preset)
    if args.data is not None:
        config = config.replace(dataset=str(Path(args.data).resolve()), n_train=None, n_valid=None, n_test=None)
    if args.physics is not None:
        from jaxphysvae.physics import load_physics
        from jaxphysvae.physics.user import check_spec, is_import_path
        spec = check_spec(args.physics)
        dim_z = load_physics(spec).dim_z if is_import_path(spec) else config.model.dim_z_phy
        config = config.replace(physics=spec, dim_z_phy=dim_z if config.model.use_physics else 0)
    if getattr(args, "epochs", None) is not None:
        config = config.replace(epochs=args.epochs)
    config, hparams = apply_overrides(config, hparams, args.set or [])
    return config, HParams.create(**hparams)


def _print_metrics(summary: dict) -> None:
    for split in ("train", "valid", "test"):
        if isinstance(summary.get(split), dict):
            m = summary[split]
            extra = "  ".join(f"{k} {v:.4g}" for k, v in m.items()
                              if k not in ("mae", "rmse", "sse_per_seq") and isinstance(v, float))
            print(f"{split:>5}: MAE {m['mae']:.4f}  RMSE {m['rmse']:.4f}  squared error per sequence "
                  f"{m['sse_per_seq']:.4f}  {extra}")


def _train(args) -> int:
    from jaxphysvae.fit import fit
    config, hparams = _hparams_and_config(args)
    out = args.out or f"runs/{args.preset}-seed{args.seed}"
    summary = fit(config, hparams, out, seed=args.seed, resume=args.resume, progress=not args.no_progress,
                  preset=args.preset, checkpoint_every=args.checkpoint_every,
                  checkpoint_seconds=args.checkpoint_seconds)
    print(f"{summary['status']}: {summary['epochs_run']} epochs, best validation at epoch {summary['best_epoch']}"
          + (f", {summary['train_seconds_per_epoch']:.3f} s per training epoch"
             if "train_seconds_per_epoch" in summary else ""))
    _print_metrics(summary)
    print(f"run directory: {out}")
    return EXIT_DIVERGED if summary["status"] == "diverged" else 0


def _fitted_metrics(fitted: dict, x, args) -> dict:
    """`reconstruction_errors` of the fitted reconstructions fitted["x_PAB"] against x (N, C, T), the encoder's
    sse_per_seq, and how the codes were fitted."""
    import numpy as np

    from jaxphysvae.evaluation import reconstruction_errors
    from jaxphysvae.refine import DEFAULT_LR, check_parts
    lr = {"lr": DEFAULT_LR if args.refine_lr is None else args.refine_lr} if args.refine_method == "adam" else {}
    return {**reconstruction_errors(fitted["x_PAB"], x), "sse_per_seq_encoder": float(np.mean(fitted["sse_start"])),
            "steps": args.refine_steps, "method": args.refine_method,
            "parts": list(check_parts(args.refine_parts)), **lr}


def _refine_options(parser: argparse.ArgumentParser, written: str) -> None:
    """--refine-steps, --refine-method, --refine-lr and --refine-parts (jaxphysvae.refine); `written` says what a
    command writes of the fitted codes."""
    parser.add_argument("--refine-steps", type=int, default=0, metavar="N",
                        help=f"also fit each sequence's code to it by N steps of --refine-method, decoder fixed "
                             f"({written}; jaxphysvae.refine)")
    parser.add_argument("--refine-method", choices=REFINE_METHODS, default="adam",
                        help="how --refine-steps fits: Adam steps (200 is typical) or Gauss-Newton "
                             "(Levenberg-Marquardt) steps (1 to 10)")
    parser.add_argument("--refine-lr", type=float, default=None, metavar="LR",
                        help="Adam's step for --refine-steps (default: jaxphysvae.refine's)")
    parser.add_argument("--refine-parts", default=",".join(REFINE_PARTS), metavar="PART,PART",
                        help=f"the parts of the code --refine-steps fits (of {', '.join(REFINE_PARTS)}; default "
                             "all), the others the encoder's")


def _check_refine(args) -> None:
    if args.refine_steps < 0:
        raise ConfigError(f"--refine-steps must be 0 (no fitting) or a positive number of steps, got "
                          f"{args.refine_steps}")
    if args.refine_lr is not None and args.refine_method != "adam":
        raise ConfigError(f"--refine-lr is the step of Adam; --refine-method {args.refine_method} takes none")


def _refine_label(args) -> str:
    """How --refine-steps fitted the codes, for printed lines: "3 adam steps", "1 gauss-newton step of s0"."""
    parts = _partial_parts(args)
    of = f" of {', '.join(parts)}" if parts else ""
    return f"{args.refine_steps} {args.refine_method} step{'s' * (args.refine_steps != 1)}{of}"


def _partial_parts(args) -> tuple[str, ...]:
    """The parts of the code --refine-parts fits, in jaxphysvae.refine's order; () when it fits them all."""
    from jaxphysvae.refine import PARTS, check_parts
    parts = check_parts(args.refine_parts)
    return () if parts == PARTS else parts


def _refined(args, model, params, ds, batch_size: int) -> dict:
    """jaxphysvae.refine of the sequences of `ds` as --refine-* say."""
    from jaxphysvae.refine import refine
    step = {} if args.refine_lr is None else {"lr": args.refine_lr}
    return refine(model, params, ds.x, steps=args.refine_steps, batch_size=batch_size, method=args.refine_method,
                  parts=args.refine_parts, **step)


def _eval(args) -> None:
    import contextlib

    import jax

    from jaxphysvae import files, rundir
    from jaxphysvae.sweep import load_any, parse_member
    from jaxphysvae.train import evaluate, physics_errors
    if args.samples < 0:
        raise ConfigError(f"--samples must be 0 (posterior mean) or a positive number of samples, got {args.samples}")
    rundir.check_seed(args.seed)
    _check_refine(args)
    run_dir, member = parse_member(args.run_dir)
    if member is None and (not run_dir.is_dir() or not ((run_dir / "config.json").exists()
                                                        or (run_dir / "sweep.json").exists())):
        raise ConfigError(f"{run_dir}: not a run directory (no config.json) nor a sweep's member (SWEEP_DIR:M)")
    if args.out is None:  # into the run directory, which this process then owns while it writes
        rundir.check_writable(run_dir, "run directory")
        target, lock = None, rundir.RunLock(run_dir)
    else:
        target, lock = Path(args.out), contextlib.nullcontext()
        if target.is_dir():
            raise ConfigError(f"--out {target} is a directory; give a file name such as {target / 'eval.json'}")
        rundir.prepare(target.parent, "directory of --out")
    with lock:
        config, hparams, model, fns, params, splits, record = load_any(args.run_dir, other_data=args.other_data)
        ds = splits[args.split]
        metrics, per = evaluate(fns, params, ds, hparams, config.schedule.eval_batch_size, samples=args.samples,
                                key=jax.random.key(args.seed))
        metrics.update(physics_errors(model, per["z_phy"], ds))
        metrics["protocol"] = ("posterior mean" if args.samples == 0 else
                               f"mean reconstruction of {args.samples} posterior samples (seed {args.seed})")
        if args.refine_steps:
            metrics["fitted"] = _fitted_metrics(_refined(args, model, params, ds, config.schedule.eval_batch_size),
                                               ds.x, args)
        identity = rundir.data_identity({args.split: ds})[args.split]
        metrics["data"] = identity
        _print_metrics({args.split: metrics})
        if args.refine_steps:
            fitted = metrics["fitted"]
            print(f"  with each sequence's code fitted ({_refine_label(args)}): MAE {fitted['mae']:.4g}, RMSE "
                  f"{fitted['rmse']:.4g}, sse_per_seq {fitted['sse_per_seq']:.4g}")
        if target is None:
            name = (f"eval_{'' if member is None else f'member{member}_'}{args.split}_samples{args.samples}"
                    + (f"_seed{args.seed}" if args.samples else ""))
            if args.refine_steps:  # a file of its own per fitting, beside the encoder's
                parts = _partial_parts(args)
                name += f"_fitted-{args.refine_method}{args.refine_steps}" + ("-" + "+".join(parts) if parts else "")
            if args.other_data:  # named by the data used, so that no evaluation on the run's own data is replaced
                name += f"_data-{identity['sha256'][:12]}"
            target = run_dir / f"{name}.json"
        files.write_json(target, metrics)
    print(f"written to {target}")


def _predict(args) -> None:
    import jax
    import numpy as np

    from jaxphysvae import rundir
    from jaxphysvae.data.arrays import read_sequences
    from jaxphysvae.data.cache import save_npz
    from jaxphysvae.predict import predict
    from jaxphysvae.sweep import load_any, parse_member
    rundir.check_seed(args.seed)
    _check_refine(args)
    run_dir, member = parse_member(args.run_dir)
    name = ("predict_" if member is None else f"predict_member{member}_") + (args.split if args.data is None else
                                                                            Path(args.data).stem)
    target = Path(args.out) if args.out else run_dir / f"{name}.npz"
    if target.suffix != ".npz" or target.is_dir():
        raise ConfigError(f"--out {target}: give a file name ending in .npz")
    config, hparams, model, fns, params, splits, _ = load_any(args.run_dir, other_data=args.data is not None)
    rundir.prepare(target.parent, "directory of --out")
    ds = splits[args.split] if args.data is None else read_sequences(args.data, args.split, dt=None)
    if args.data is not None and not np.isclose(ds.dt, model.dt, rtol=1e-6, atol=0):
        raise ConfigError(f"{args.data}: time step {ds.dt:g} differs from the {model.dt:g} the run was trained on")
    out = predict(model, params, ds.x, samples=args.samples, key=jax.random.key(args.seed),
                  batch_size=config.schedule.eval_batch_size, horizon=args.horizon)
    if args.scale_z_phy is not None:
        scaled = predict(model, params, ds.x, batch_size=config.schedule.eval_batch_size, horizon=args.horizon,
                         z_phy=args.scale_z_phy * out["z_phy_mean"])
        out.update({k: v for k, v in scaled.items() if k.startswith("x_")})
    if args.refine_steps:
        out.update({f"fitted_{k}": v for k, v in _refined(args, model, params, ds,
                                                          config.schedule.eval_batch_size).items()})
    arrays = {"x": ds.x, **out, **{f"true_{k}": v for k, v in ds.params.items()}}
    save_npz(target, **arrays)
    print(f"{ds.num_sequences} sequences of {ds.source}: reconstructions x_P, x_PA, x_PB, x_PAB "
          f"{tuple(out['x_PAB'].shape)}" + (f", extrapolated x_P_long {tuple(out['x_P_long'].shape)}"
                                            if args.horizon else "")
          + (f", decoded with z_P x {args.scale_z_phy:g}" if args.scale_z_phy is not None else ""))
    rmse = float(np.sqrt(np.mean((out["x_PAB"] - ds.x) ** 2)))
    print(f"  reconstruction RMSE {rmse:.4g} (x_PAB against the input)")
    if args.refine_steps:
        fitted_rmse = float(np.sqrt(np.mean((out["fitted_x_PAB"] - ds.x) ** 2)))
        print(f"  with each sequence's code fitted ({_refine_label(args)}): RMSE {fitted_rmse:.4g} (fitted_*)")
    for name in (model.physics.param_names if config.model.use_physics else ()):
        if name not in out:
            continue
        line = f"  {name}: mean {out[name].mean():.4g}, range [{out[name].min():.4g}, {out[name].max():.4g}]"
        if f"{name}_std" in out:
            line += f", mean posterior std {out[name + '_std'].mean():.3g}"
        if name in ds.params:
            line += f"; MAE against the true values {np.abs(out[name] - ds.params[name]).mean():.4g}"
        print(line)
    print(f"written to {target} (keys: {', '.join(sorted(arrays))})")


def _sweep(args) -> None:
    from jaxphysvae.errors import ConfigError
    from jaxphysvae.sweep import parse_grid, sweep
    config, hparams = _hparams_and_config(args)
    grid = parse_grid(args.grid or [])
    if not grid:
        raise ConfigError("give at least one --grid key=v1,v2,...")
    out = args.out or f"runs/sweep-{args.preset}"
    base = {k: float(v) for k, v in hparams._asdict().items()}
    result = sweep(config, base, grid, out, progress=not args.no_progress, resume=args.resume,
                   checkpoint_every=args.checkpoint_every, checkpoint_seconds=args.checkpoint_seconds,
                   preset=args.preset)
    print((Path(out) / "sweep.md").read_text())
    print(f"{len(result['members'])} members, {result['epochs']} epochs in {result['seconds']:.1f} s on "
          f"{result['devices']} device(s); written to {out}")


def _least_squares(args) -> None:
    import numpy as np

    from jaxphysvae.data.cache import save_npz
    from jaxphysvae.physics import make_physics
    from jaxphysvae.physics.least_squares import least_squares
    from jaxphysvae.runs import load_splits
    config, _ = _hparams_and_config(args)
    if args.out is not None and not args.out.endswith(".npz"):
        raise ConfigError(f"--out {args.out}: give a file name ending in .npz")
    ds = load_splits(config)[args.split]
    physics = make_physics(config.model, ds.x.shape[1])
    fit = least_squares(physics, ds.x, ds.dt, points=args.points, spacing=args.spacing)
    rmse = float(np.sqrt(np.mean((fit.x_hat - ds.x) ** 2)))
    print(f"{ds.num_sequences} sequences of {ds.source} ({args.split}): the physics model alone, fitted to each "
          f"on a grid of {len(fit.grid)} values of z_P; reconstruction RMSE {rmse:.4g}")
    estimates = {name: fit.z[:, i] for i, name in enumerate(physics.param_names[:physics.dim_z])}
    for name, value in estimates.items():
        line = f"  {name}: mean {value.mean():.4g}, range [{value.min():.4g}, {value.max():.4g}]"
        if name in ds.params:
            line += f"; MAE against the true values {np.abs(value - ds.params[name]).mean():.4g}"
        print(line)
    if args.out is not None:
        save_npz(Path(args.out), x=ds.x, x_hat=fit.x_hat, z=fit.z, sse=fit.sse, **estimates,
                 **{f"true_{k}": v for k, v in ds.params.items()})
        print(f"written to {args.out}")


def _presets(args) -> None:
    from jaxphysvae import presets
    for name, text in presets.describe():
        print(f"{name:<30} {text}")


def _demo(args) -> None:
    import jax
    import jax.numpy as jnp

    from jaxphysvae import plots, presets
    from jaxphysvae.config import HParams
    from jaxphysvae.fit import fit, load_run
    config, hparams = presets.get("pendulum-phys-vae")
    config = config.replace(epochs=args.epochs)
    out = Path(args.out)
    print(f"training pendulum-phys-vae for {args.epochs} epochs (the paper runs 5000) into {out}")
    summary = fit(config, HParams.create(**hparams), out, seed=0, resume=(out / "last.ckpt").exists(),
                  progress=not args.no_progress, preset="pendulum-phys-vae")
    _print_metrics(summary)
    test = summary["test"]
    print(f"test reconstruction RMSE {test['rmse']:.4f} rad; physics-only x_P RMSE {test['rmse_P']:.4f} rad; "
          f"inferred omega: mean absolute error {test['omega_mae']:.3f} rad/s "
          f"({100 * test['omega_rel_err']:.1f} % relative)")
    _, _, model, fns, params, splits, _ = load_run(out)
    ds = splits["test"]
    @jax.jit
    def reconstruct(x):
        post = model.encode(params, x)
        z, _ = model.latents(params, post, None)
        return z.phy[:, 0], model.decode(params, z, post.s0)

    omega, rec = jax.device_get(reconstruct(jnp.asarray(ds.x[:4])))
    plots.reconstructions(out / "reconstructions.png", ds.t, ds.x[:4], rec.x_P, rec.x_PAB, ds.channels,
                          titles=[f"omega true {a:.2f}, inferred {b:.2f} rad/s"
                                  for a, b in zip(ds.params["omega"][:4], omega)],
                          title=f"pendulum-phys-vae, {summary['epochs_run']} epochs: test sequences")
    print(f"figure: {out / 'reconstructions.png'}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxphysvae", description=__doc__)
    parser.add_argument("--host-devices", type=int, default=None, metavar="N",
                        help="split the CPU into N host devices before jax starts: a sweep shards its members over "
                             "them, and `--set batch_shards=N` splits every training batch over them")
    commands = parser.add_subparsers(dest="command", required=True)

    data_parser = commands.add_parser("data", help="inspect, build or download data sets")
    data_commands = data_parser.add_subparsers(dest="data_command", required=True)
    info = data_commands.add_parser("info", help="sizes, shapes, value ranges and source of a data set")
    info.add_argument("name", help="pendulum, advdif, locomotion, or the path of your own .npz / .npy file or "
                                   "locomotion split directory")
    info.add_argument("--split", default="all", choices=("all", "train", "valid", "test"))
    info.add_argument("--n", type=int, default=None, help="number of sequences (generated data sets)")
    info.add_argument("--seed", type=int, default=0,
                      help="generator seed (generated data sets), or the seed of a data file's split")
    info.add_argument("--data-dir", default=None,
                      help="cache directory (generated data sets) or split directory (locomotion)")
    info.set_defaults(run=_data_info)

    build = data_commands.add_parser("build-locomotion", help="build a locomotion split from raw SubjectN.mat files")
    build.add_argument("--raw-dir", required=True, help="directory of SubjectN.mat files")
    build.add_argument("--out", required=True, help="output split directory")
    build.add_argument("--by", default="stride", choices=("stride", "subject"),
                       help="random over strides (as published) or subject-wise (no subject in two splits)")
    build.add_argument("--sizes", default=None,
                       help="train,valid counts or fractions, e.g. 400,100 or 0.6,0.2 (default: 400,100 strides "
                            "or 0.6,0.2 of subjects)")
    build.add_argument("--test-raw-dir", default=None,
                       help="take the test split from the SubjectN.mat files of this directory (other people); "
                            "--sizes then divides --raw-dir's strides or subjects between train and valid "
                            "(default 0.8,0.2)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--published", action="store_true",
                       help="the published phys-VAE split (needs all 50 subjects' files): the same 400 / 100 / 344 "
                            "strides in the same order, value for value")
    build.set_defaults(run=_data_build_locomotion)

    dl = data_commands.add_parser("download", help="download the 50 raw SubjectN.mat files from figshare")
    dl.add_argument("--out", required=True, help="directory to download into")
    dl.set_defaults(run=_data_download)

    train = commands.add_parser("train", help="train a preset, writing a run directory")
    train.add_argument("--preset", required=True, help="see `jaxphysvae presets`")
    _user_options(train)
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default=None, help="run directory (default runs/PRESET-seedS)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a configuration key or hyper-parameter (repeatable)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.add_argument("--checkpoint-every", type=int, default=50, metavar="EPOCHS",
                       help="write checkpoints every EPOCHS epochs (also after the first epoch, at the end, on a "
                            "stop, and at least every --checkpoint-seconds)")
    train.add_argument("--checkpoint-seconds", type=float, default=60.0, metavar="S",
                       help="write checkpoints whenever S seconds have passed since the last write (default 60)")
    train.add_argument("--no-progress", action="store_true")
    train.set_defaults(run=_train, computes=True)

    ev = commands.add_parser("eval", help="evaluate a run's best checkpoint (or a sweep member's) on a split")
    ev.add_argument("run_dir", help="run directory, or SWEEP_DIR:M for member M of a finished sweep")
    ev.add_argument("--split", default="test", choices=("train", "valid", "test"))
    ev.add_argument("--samples", type=int, default=0,
                    help="0: posterior mean; S > 0: mean reconstruction of S posterior samples")
    ev.add_argument("--seed", type=int, default=0, help="seed of the posterior samples")
    ev.add_argument("--out", default=None,
                    help="JSON file to write (default: eval_[memberM_]SPLIT_samplesS[_seedK].json in the run or "
                         "sweep directory)")
    ev.add_argument("--other-data", action="store_true",
                    help="evaluate even though the data now found differ from those the run was trained on (the "
                         "output file is then named by the data's hash)")
    _refine_options(ev, "\"fitted\" in the JSON: mae, rmse and sse_per_seq of their reconstructions, in a file "
                        "of its own, eval_..._fitted-METHODN[-PARTS].json")
    ev.set_defaults(run=_eval, computes=True)

    sw = commands.add_parser("sweep", help="train every combination of a hyper-parameter grid in one compiled step")
    sw.add_argument("--preset", required=True)
    _user_options(sw)
    sw.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                    help="hyper-parameter (or seed) values to combine, e.g. --grid alpha=1e-3,1e-2 --grid seed=0,1")
    sw.add_argument("--epochs", type=int, default=None)
    sw.add_argument("--out", default=None, help="sweep directory (default runs/sweep-PRESET)")
    sw.add_argument("--set", action="append", metavar="KEY=VALUE", help="override the preset (repeatable)")
    sw.add_argument("--resume", action="store_true", help="continue the sweep in --out from its saved state")
    sw.add_argument("--checkpoint-every", type=int, default=50, metavar="EPOCHS",
                    help="save every member's state every EPOCHS epochs (also after the first, on a stop, and at "
                         "least every --checkpoint-seconds)")
    sw.add_argument("--checkpoint-seconds", type=float, default=60.0, metavar="S")
    sw.add_argument("--no-progress", action="store_true")
    sw.set_defaults(run=_sweep, computes=True)

    pd = commands.add_parser("predict", help="write a run's reconstructions, latents and physics parameters to .npz")
    pd.add_argument("run_dir", help="run directory, or SWEEP_DIR:M for member M of a finished sweep")
    pd.add_argument("--split", default="test", choices=("train", "valid", "test"))
    pd.add_argument("--data", default=None, metavar="PATH",
                    help="predict for the sequences of this file instead (its x, or its --split)")
    pd.add_argument("--samples", type=int, default=0,
                    help="S > 0: also S posterior samples of every latent and the parameters' posterior std")
    pd.add_argument("--seed", type=int, default=0, help="seed of the posterior samples")
    pd.add_argument("--horizon", type=int, default=None, metavar="STEPS",
                    help="also integrate the ODE part for this many steps (x_P_long, x_PA_long)")
    pd.add_argument("--scale-z-phy", type=float, default=None, metavar="FACTOR",
                    help="decode with the inferred physics parameters times FACTOR (a counterfactual)")
    _refine_options(pd, "fitted_*: the code, its x_PAB, sse before and after")
    pd.add_argument("--out", default=None, help="output .npz (default RUN_DIR/predict_SPLIT.npz)")
    pd.set_defaults(run=_predict, computes=True)

    ls = commands.add_parser("least-squares", help="fit the physics model alone to each sequence: the baseline for "
                                                   "the inferred physics parameters")
    ls.add_argument("--preset", required=True, help="the data set and physics of this preset (a template)")
    _user_options(ls)
    ls.add_argument("--split", default="test", choices=("train", "valid", "test"))
    ls.add_argument("--points", type=int, default=1000, help="grid points per dimension of z_P (default 1000)")
    ls.add_argument("--spacing", default="linear", choices=("linear", "log"), help="grid spacing over the range")
    ls.add_argument("--set", action="append", metavar="KEY=VALUE", help="override the preset (repeatable)")
    ls.add_argument("--out", default=None, help="also write the estimates and fits to this .npz file")
    ls.set_defaults(run=_least_squares, computes=True)

    pr = commands.add_parser("presets", help="list the presets")
    pr.set_defaults(run=_presets)

    demo = commands.add_parser("demo", help="train phys-VAE on the pendulum, report errors, save a figure")
    demo.add_argument("--epochs", type=int, default=600)
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(run=_demo, computes=True)
    return parser


def _user_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="train on your own .npz / .npy file of sequences (N, C, T) or locomotion split "
                             "directory instead of the preset's data (see jaxphysvae.data.arrays for the layout)")
    parser.add_argument("--physics", default=None, metavar="MODULE:NAME",
                        help="your own PhysicsModel by import path (e.g. mymodels:Spring, found from the current "
                             "directory) instead of the preset's; dim_z_phy follows it")


def use_host_devices(count: int) -> None:
    """Make jax's CPU platform present `count` devices (XLA_FLAGS=--xla_force_host_platform_device_count); only
    possible before jax starts its backends."""
    import os
    if count < 1:
        raise ConfigError(f"--host-devices must be a positive integer, got {count}")
    bridge = sys.modules.get("jax._src.xla_bridge")
    if bridge is not None and getattr(bridge, "backends_are_initialized", lambda: False)():
        raise ConfigError("--host-devices must be set before jax starts its backends")
    os.environ["XLA_FLAGS"] = host_device_flags(os.environ.get("XLA_FLAGS", ""), count)


def host_device_flags(xla_flags: str, count: int) -> str:
    """`xla_flags` (an XLA_FLAGS value) with its host device count, if any, replaced by `count`; the rest kept."""
    kept = [f for f in xla_flags.split() if "xla_force_host_platform_device_count" not in f]
    return " ".join(kept + [f"--xla_force_host_platform_device_count={count}"])


def enable_compilation_cache() -> None:
    """Keep compiled programs on disk ($JAXPHYSVAE_COMPILATION_CACHE, default ~/.cache/jaxphysvae/xla; set it
    to an empty string to disable), and the traced programs that lead to them in its `programs` folder
    (jaxphysvae.programs), so that a second run of the same model neither traces nor compiles again."""
    import os

    import jax

    from jaxphysvae import programs
    path = os.environ.get("JAXPHYSVAE_COMPILATION_CACHE", str(Path.home() / ".cache" / "jaxphysvae" / "xla"))
    if path:
        jax.config.update("jax_compilation_cache_dir", path)
        # JAX's default keeps only programs that took a second or more to compile; a locomotion model's evaluation
        # compiles in about 0.7 s, once per split shape, and would be compiled again by every run
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
        programs.enable(Path(path) / "programs")


def main(argv: list[str] | None = None) -> int:
    """Run a command; the exit status is 0 on success, 2 for bad input (a one-line error), 3 when training
    diverged (EXIT_DIVERGED), and 128 + the signal number after a clean stop on Ctrl-C (130) or SIGTERM (143)."""
    args = build_parser().parse_args(argv)
    try:
        if args.host_devices is not None:
            use_host_devices(args.host_devices)
        if getattr(args, "computes", False):  # the other commands never start jax
            enable_compilation_cache()
        return args.run(args) or 0
    except JaxPhysVAEError as e:
        print(f"jaxphysvae: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as e:  # jaxphysvae.interrupt.Interrupted after a clean stop, or a plain Ctrl-C
        print(f"jaxphysvae: {str(e) or 'interrupted'}", file=sys.stderr)
        return getattr(e, "exit_code", 130)


if __name__ == "__main__":
    sys.exit(main())
