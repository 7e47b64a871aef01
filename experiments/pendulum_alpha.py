"""The pendulum's alpha trade-off (issue 13.6): how well omega is inferred, and how well the data are reconstructed,
as the weight alpha of R_ppc (also added to the KL weight) grows.

    python -m experiments.pendulum_alpha [--epochs 3000] [--seeds 0,1,2] [--results]     # --quick: a smoke run

On the generated pendulum (forced, damped; the model's physics is theta'' = -omega^2 sin theta, the forcing and the
damping are left to the neural parts): `pendulum-phys-vae` over ALPHAS x seeds in one vectorised sweep
(OUT/alpha-sweep), beside the omega errors of the training mean of omega, a per-sequence least-squares fit of the
same incomplete physics (omega on a fine grid, theta(0) = x_0, theta'(0) = 0), and `pendulum-phys-only` over the
same seeds (OUT/phys-only). Test split, posterior mean, best-validation checkpoints. Both sweeps resume. Writes
OUT/pendulum_alpha.{json,md,png} and, with --results, experiments/results/pendulum_alpha.*.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments import report, tradeoff
from experiments.sweeps import preset_sweep
from jaxphysvae import data, presets
from jaxphysvae.physics import Pendulum
from jaxphysvae.physics.least_squares import least_squares

RESULTS = Path(__file__).resolve().parent / "results"
ALPHAS = (0.0, 0.01, 0.1, 0.3, 1.0)
QUICK_SIZES = {"n_train": 64, "n_valid": 32, "n_test": 32}


def _sweep(name: str, grid: dict, target: Path, epochs: int, quick: bool) -> dict:
    changes = dict(**presets.TOY_WIDTHS, **QUICK_SIZES, batch_size=32, eval_batch_size=32) if quick else None
    return preset_sweep(name, grid, target, epochs, changes, progress=not quick)


def run(out: Path, epochs: int, seeds: list[int], quick: bool) -> dict:
    sizes = QUICK_SIZES if quick else {}
    train = data.load("pendulum", "train", **({"n": sizes["n_train"]} if quick else {}))
    test = data.load("pendulum", "test", **({"n": sizes["n_test"]} if quick else {}))
    truth = test.params["omega"]
    fit = least_squares(Pendulum(), test.x, test.dt, points=1500)  # omega on a grid over the model's range
    omega_ls, rmse_ls = fit.z[:, 0], float(np.sqrt(fit.sse.sum() / test.x.size))
    baselines = {"training mean of omega": float(np.abs(train.params["omega"].mean() - truth).mean()),
                 "least squares of theta'' = -omega^2 sin theta": float(np.abs(omega_ls - truth).mean())}
    physics_only = _sweep("pendulum-phys-only", {"seed": seeds}, out / "phys-only", epochs, quick)
    phys_maes = [m["test"]["omega_mae"] for m in physics_only["members"]]
    baselines["pendulum-phys-only"] = float(np.mean(phys_maes))
    trade = tradeoff.curve(_sweep("pendulum-phys-vae", {"alpha": list(ALPHAS), "seed": seeds}, out / "alpha-sweep",
                                  epochs, quick), "omega", ALPHAS)
    return {"epochs": epochs, "seeds": seeds, "baselines": baselines, "least_squares_rmse": rmse_ls,
            "phys_only": {"omega_mae_std": float(np.std(phys_maes)),
                          "rmse": float(np.mean([m["test"]["rmse"] for m in physics_only["members"]]))},
            "alpha": trade}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/pendulum_alpha", help="directory of the two sweeps and the tables")
    parser.add_argument("--epochs", type=int, default=3000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--quick", action="store_true", help="toy widths, small splits, few epochs (the test's)")
    parser.add_argument("--results", action="store_true", help="also write experiments/results/pendulum_alpha.*")
    args = parser.parse_args(argv)
    out = Path(args.out)
    epochs = 2 if args.quick and args.epochs == 3000 else args.epochs
    seeds = [int(s) for s in args.seeds.split(",")]
    result = run(out, epochs, seeds, args.quick)
    text = tradeoff.markdown(result["alpha"], result["baselines"], "`pendulum-phys-vae` on the pendulum over alpha")
    text += (f"\nReconstruction RMSE of the least-squares fits {result['least_squares_rmse']:.4f}, of "
             f"`pendulum-phys-only` {result['phys_only']['rmse']:.4f}.\n")
    report.write("pendulum_alpha", result, text, [out] + ([RESULTS] if args.results else []),
                 lambda path: tradeoff.figure(result["alpha"], result["baselines"], path, "rad/s"))
    print(text)
    return result


if __name__ == "__main__":
    from experiments.command import run_command
    run_command(main)
