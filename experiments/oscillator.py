"""Worked example: your own physics and your own data, end to end. A damped oscillator observed with noise, modelled
with the incomplete physics x'' = -k x (the damping is left to the neural parts), and the inferred k per sequence.

    python -m experiments.oscillator [--alpha]     # a few minutes on a laptop CPU; --quick for a smoke run

Data (written by `generate`, then read back from a .npz file as a user's would be): x'' = -k x - c x' with
k ~ U(1, 4), c ~ U(0, 0.4), x(0) ~ +-U(0.5, 1.5), x'(0) = 0, 50 points 0.1 s apart, Gaussian noise of std 0.01;
400 / 100 / 100 sequences. Models: the `pendulum-*` presets as templates, with this file as data and `Spring` as
physics (the same as `jaxphysvae train --preset pendulum-phys-vae --data oscillator.npz --physics
experiments.oscillator:Spring`); with --alpha, also `pendulum-phys-vae` over alpha and three seeds in one
vectorised sweep. Baselines for k: the training mean, and a per-sequence least-squares fit of the same
incomplete model (`jaxphysvae.physics.least_squares`: k on a fine grid). Writes OUT/oscillator.{json,md} and, with
--results, experiments/results/oscillator.{json,md}; each run directory is resumed when it exists.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from experiments import tradeoff
from experiments.sweeps import preset_sweep
from jaxphysvae import files, presets
from jaxphysvae.config import HParams
from jaxphysvae.data.cache import save_npz
from jaxphysvae.fit import fit, load_run
from jaxphysvae.physics import PhysicsModel
from jaxphysvae.physics.least_squares import least_squares
from jaxphysvae.predict import predict

RESULTS = Path(__file__).resolve().parent / "results"
K_RANGE, C_RANGE, DT, NUM_STEPS, NOISE = (1.0, 4.0), (0.0, 0.4), 0.1, 50, 0.01
SIZES = (400, 100, 100)


class Spring(PhysicsModel):
    """x'' = -k x: state (x, x'), z_P = k in [1, 4] (1/s^2), x observed, initial state (x_0, 0); the in-ODE
    correction acts on the acceleration."""

    def __init__(self):
        super().__init__(dim_z=1, state_size=2, z_range=((K_RANGE[0],), (K_RANGE[1],)), positive=True,
                         param_names=("k",), correction_index=(1,))

    def vector_field(self, params, t, state, z):
        return jnp.stack([state[1], -z[0] * state[0]])

    def initial_state(self, x):
        return jnp.stack([x[0, 0], jnp.zeros_like(x[0, 0])])

    def observe(self, params, state):
        return state[:1]


def generate(n: int, seed: int = 0, noise: float = NOISE) -> dict[str, np.ndarray]:
    """n damped oscillations (the closed form of the under-damped solution) with Gaussian noise of std `noise`:
    x (n, 1, T), k and c (n,)."""
    rng = np.random.default_rng(seed)
    k, c = rng.uniform(*K_RANGE, n), rng.uniform(*C_RANGE, n)
    x0 = rng.uniform(0.5, 1.5, n) * rng.choice([-1.0, 1.0], n)
    t = np.arange(NUM_STEPS) * DT
    w = np.sqrt(k - c**2 / 4)[:, None]  # c^2 / 4 < k: every oscillator is under-damped
    x = np.exp(-c[:, None] * t / 2) * x0[:, None] * (np.cos(w * t) + c[:, None] / (2 * w) * np.sin(w * t))
    return {"x": (x + noise * rng.standard_normal(x.shape))[:, None, :], "k": k, "c": c}


def write_data(path: Path, seed: int = 0) -> Path:
    """The example's data file in the layout of jaxphysvae.data.arrays (x_train, x_valid, x_test, dt, param_k_*)."""
    arrays = {"dt": DT, "channels": np.array(["x"])}
    for i, (split, n) in enumerate(zip(("train", "valid", "test"), SIZES)):
        data = generate(n, seed + i)
        arrays.update({f"x_{split}": data["x"], f"param_k_{split}": data["k"], f"param_c_{split}": data["c"]})
    save_npz(path, **arrays)
    return path


def k_scores(estimate: np.ndarray, truth: np.ndarray) -> dict:
    constant = np.ptp(estimate) == 0  # no correlation to speak of
    return {"k_mae": float(np.abs(estimate - truth).mean()),
            "k_corr": None if constant else float(np.corrcoef(estimate, truth)[0, 1])}


MODELS = ("pendulum-phys-only", "pendulum-phys-nn", "pendulum-phys-vae")


def run(out: Path, epochs: int, quick: bool) -> dict:
    # this module's Spring by its import path, also under `python -m` (where this copy is __main__): the runs'
    # config.json then names experiments.oscillator:Spring, and `jaxphysvae eval` / `predict` rebuild it
    physics = importlib.import_module("experiments.oscillator").Spring
    data_file = out / "oscillator.npz"
    if not data_file.is_file():
        write_data(data_file)
    rows = []
    test = np.load(data_file)
    k_train, k_test, x_test = test["param_k_train"], test["param_k_test"], test["x_test"]
    rows.append({"model": "training mean of k", **k_scores(np.full_like(k_test, k_train.mean()), k_test)})
    fit_ls = least_squares(Spring(), x_test, DT, points=3001)  # k on a grid over Spring's range
    k_ls, x_ls = fit_ls.z[:, 0], fit_ls.x_hat
    rows.append({"model": "least squares of x'' = -k x", **k_scores(k_ls, k_test),
                 "rmse": float(np.sqrt(np.mean((x_ls - x_test) ** 2)))})
    for name in MODELS[-1:] if quick else MODELS:
        config, hparams = presets.get(name)
        config = config.replace(dataset=str(data_file.resolve()), epochs=epochs)
        if quick:
            config = config.replace(**presets.TOY_WIDTHS, batch_size=50)
        run_dir = out / name
        t0 = time.perf_counter()
        summary = fit(config, HParams.create(**hparams), run_dir, physics=physics(), progress=not quick,
                      resume=(run_dir / "config.json").is_file())
        _, _, model, _, params, splits, _ = load_run(run_dir)
        pred = predict(model, params, splits["test"].x)
        rows.append({"model": name, **k_scores(pred["k"], splits["test"].params["k"]),
                     "rmse": summary["test"]["rmse"], "rmse_P": summary["test"]["rmse_P"],
                     "best_epoch": summary["best_epoch"], "epochs": summary["epochs_run"],
                     "seconds": time.perf_counter() - t0})
    return {"epochs": epochs, "noise_std": NOISE, "sizes": SIZES, "rows": rows}


ALPHAS = (0.0, 0.01, 0.1, 1.0)
BASELINES = ("training mean of k", "least squares of x'' = -k x", "pendulum-phys-only")
SEEDS = (0, 1, 2)


def alpha_sweep(out: Path, epochs: int, quick: bool) -> dict:
    """`pendulum-phys-vae` on the oscillator for every alpha in ALPHAS and seed in SEEDS, as one vectorised sweep
    (the command line's `jaxphysvae sweep --preset pendulum-phys-vae --data OUT/oscillator.npz --physics
    experiments.oscillator:Spring --grid alpha=0,0.01,0.1,1 --grid seed=0,1,2`, whose directory it shares): test k
    MAE and RMSE, mean and standard deviation over seeds per alpha."""
    data_file = out / "oscillator.npz"
    if not data_file.is_file():
        write_data(data_file)
    target = out / "alpha-sweep"
    if (target / "sweep.json").is_file():
        result = json.loads((target / "sweep.json").read_text())
    else:
        changes = {"dataset": str(data_file.resolve()), "physics": "experiments.oscillator:Spring",
                   **(dict(**presets.TOY_WIDTHS, batch_size=50) if quick else {})}
        grid = {"alpha": list(ALPHAS), "seed": list(SEEDS[:1] if quick else SEEDS)}
        result = preset_sweep("pendulum-phys-vae", grid, target, epochs, changes, progress=not quick)
    return tradeoff.curve(result, "k", ALPHAS)


def markdown(result: dict) -> str:
    lines = [f"Damped oscillator, inferred k on the {result['sizes'][2]} test sequences ({result['epochs']} epochs; "
             f"noise std {result['noise_std']}, the reconstruction floor).", "",
             "| model | k MAE | k correlation | test RMSE (x_PAB) | physics-only RMSE (x_P) | best epoch |",
             "|---|---|---|---|---|---|"]
    fmt = lambda r, k: f"{r[k]:.4f}" if k in r else ""
    for r in result["rows"]:
        corr = "-" if r["k_corr"] is None else f"{r['k_corr']:.3f}"
        lines.append(f"| {r['model']} | {r['k_mae']:.3f} | {corr} | {fmt(r, 'rmse')} | {fmt(r, 'rmse_P')} "
                     f"| {r.get('best_epoch', '')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/oscillator", help="directory of the data file and the runs")
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="toy widths and few epochs (the test's smoke run)")
    parser.add_argument("--alpha", action="store_true",
                        help="also the alpha trade-off: a vectorised sweep over ALPHAS x SEEDS (oscillator_alpha.*)")
    parser.add_argument("--results", action="store_true", help="also write experiments/results/oscillator*.*")
    args = parser.parse_args(argv)
    out = Path(args.out)
    epochs = 3 if args.quick and args.epochs == 2000 else args.epochs
    result = run(out, epochs, args.quick)
    text = markdown(result)
    targets = [out] + ([RESULTS] if args.results else [])
    if args.alpha:
        result["alpha"] = alpha_sweep(out, epochs, args.quick)
        baselines = {r["model"]: r["k_mae"] for r in result["rows"] if r["model"] in BASELINES}
        text += "\n" + tradeoff.markdown(result["alpha"], baselines, "`pendulum-phys-vae` on the oscillator over alpha")
    for target in targets:
        files.write_json(target / "oscillator.json", result)
        with files.atomic_path(target / "oscillator.md") as tmp:
            tmp.write_text(text)
        if args.alpha:
            tradeoff.figure(result["alpha"], baselines, target / "oscillator_alpha.png", "1/s^2")
    print(text)
    return result


if __name__ == "__main__":
    from experiments.command import run_command
    run_command(main)
