"""The alpha trade-off of a phys-VAE, shared by the experiments that measure it (oscillator, pendulum_alpha): the
error of the inferred physics parameter and of the reconstruction per alpha, mean +- std over the seeds of one
vectorised sweep, as a table and a figure beside the baselines' parameter errors; and the alpha chosen on the
validation split by a stated rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments import report


RMSE_FACTOR = 1.5  # "near the best reconstruction": a validation RMSE within this factor of the best alpha's


def curve(result: dict, param: str, alphas, rmse_factor: float = RMSE_FACTOR) -> dict:
    """Per alpha: the members of a sweep's result (sweep.json) with that alpha, their count, how many diverged, the
    mean and standard deviation of the test `PARAM_mae`, `rmse` (x_PAB) and `rmse_P` (the physics part), and the
    mean validation `PARAM_mae` and `rmse`; and the alpha `choose` picks from the validation figures."""
    rows = []
    for alpha in alphas:
        members = [m for m in result["members"] if np.isclose(m["alpha"], alpha, rtol=1e-6, atol=0)]
        row = {"alpha": alpha, "seeds": len(members), "diverged": sum(m["status"] != "completed" for m in members)}
        for key in (f"{param}_mae", "rmse", "rmse_P"):
            values = np.array([m["test"][key] for m in members])
            row[key], row[f"{key}_std"] = float(values.mean()), float(values.std())
        for key in (f"{param}_mae", "rmse"):
            row[f"valid_{key}"] = float(np.mean([m["valid"][key] for m in members]))
        rows.append(row)
    return {"epochs": result["epochs"], "param": param, "rows": rows, "rmse_factor": rmse_factor,
            "chosen": choose(rows, param, rmse_factor)}


def choose(rows: list[dict], param: str, rmse_factor: float = RMSE_FACTOR) -> float | None:
    """The alpha with the lowest mean validation PARAM MAE among those whose mean validation RMSE is within
    `rmse_factor` of the lowest over alphas, no seed having diverged; None if every alpha had a diverged seed."""
    healthy = [r for r in rows if not r["diverged"]]
    if not healthy:
        return None
    best_rmse = min(r["valid_rmse"] for r in healthy)
    near = [r for r in healthy if r["valid_rmse"] <= rmse_factor * best_rmse]
    return min(near, key=lambda r: r[f"valid_{param}_mae"])["alpha"]


def markdown(trade: dict, baselines: dict, title: str) -> str:
    """The curve as a Markdown table under `title`, the baselines' parameter MAE below it."""
    p = trade["param"]
    lines = [f"{title} ({trade['epochs']} epochs; mean +- std over seeds; test split):", "",
             f"| alpha | seeds | {p} MAE | test RMSE (x_PAB) | physics-only RMSE (x_P) |", "|---|---|---|---|---|"]
    for r in trade["rows"]:
        alpha = f"**{r['alpha']:g}** (chosen)" if r["alpha"] == trade.get("chosen") else f"{r['alpha']:g}"
        lines.append(f"| {alpha} | {r['seeds']} | {r[p + '_mae']:.3f} +- {r[p + '_mae_std']:.3f} | "
                     f"{r['rmse']:.4f} +- {r['rmse_std']:.4f} | {r['rmse_P']:.4f} +- {r['rmse_P_std']:.4f} |")
    lines += ["", f"Baselines ({p} MAE): " + "; ".join(f"{k} {v:.3f}" for k, v in baselines.items())]
    if "chosen" in trade:
        lines += ["", f"Chosen on the validation split: the lowest validation {p} MAE among the alphas whose "
                      f"validation RMSE is within {trade['rmse_factor']:g}x the best alpha's (no diverged seed)."]
    return "\n".join(lines) + "\n"


def figure(trade: dict, baselines: dict, path: Path, unit: str) -> None:
    """The parameter MAE (left axis) and the reconstruction RMSE (right axis) against alpha, baselines dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = trade["param"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    rows = trade["rows"]
    xs = [max(r["alpha"], 1e-3) for r in rows]  # alpha = 0 drawn at 1e-3 on the log axis
    ax.errorbar(xs, [r[p + "_mae"] for r in rows], [r[p + "_mae_std"] for r in rows], fmt="o-", label=f"{p} MAE")
    for (name, value), style in zip(baselines.items(), (":", "--", "-.", (0, (1, 4)))):
        ax.axhline(value, color="grey", ls=style, lw=1, label=name)
    ax.set(xscale="log", xlabel="alpha (0 drawn at 1e-3)", ylabel=f"test {p} MAE ({unit})")
    twin = ax.twinx()
    twin.errorbar(xs, [r["rmse"] for r in rows], [r["rmse_std"] for r in rows], fmt="s--", color="C3", ms=4)
    twin.set_ylabel("test RMSE of x_PAB", color="C3")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    report.save_figure(fig, path)
