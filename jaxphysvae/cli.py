"""The `jaxphysvae` command line."""

from __future__ import annotations

import argparse
import sys

from jaxphysvae.errors import JaxPhysVAEError


def _data_info(args) -> None:
    from jaxphysvae import data
    options = {}
    if args.name in ("pendulum", "advdif"):
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
    sizes = None if args.sizes is None else tuple(float(s) if "." in s else int(s) for s in args.sizes.split(","))
    splits = raw.split_strides(strides, by=args.by, sizes=sizes, seed=args.seed)
    out = raw.write_split(splits, args.out)
    print(f"{strides.num_sequences} walking strides from {strides.source}")
    for split, ds in splits.items():
        subjects = len(set(ds.covariates["subject"].tolist()))
        print(f"  {split}: {ds.num_sequences} strides of {subjects} subjects")
    print(f"written to {out}; load with jaxphysvae.data.load('locomotion', split, directory='{out}')")


def _data_download(args) -> None:
    from jaxphysvae.data import download
    paths = download.download(args.out)
    print(f"{len(paths)} files in {args.out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxphysvae", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data_parser = commands.add_parser("data", help="inspect, build or download data sets")
    data_commands = data_parser.add_subparsers(dest="data_command", required=True)
    info = data_commands.add_parser("info", help="sizes, shapes, value ranges and source of a data set")
    info.add_argument("name", help="pendulum, advdif or locomotion")
    info.add_argument("--split", default="all", choices=("all", "train", "valid", "test"))
    info.add_argument("--n", type=int, default=None, help="number of sequences (generated data sets)")
    info.add_argument("--seed", type=int, default=0, help="generator seed (generated data sets)")
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
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(run=_data_build_locomotion)

    dl = data_commands.add_parser("download", help="download the 50 raw SubjectN.mat files from figshare")
    dl.add_argument("--out", required=True, help="directory to download into")
    dl.set_defaults(run=_data_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except JaxPhysVAEError as e:
        print(f"jaxphysvae: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("jaxphysvae: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
