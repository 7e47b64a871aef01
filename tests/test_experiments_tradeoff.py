"""experiments/tradeoff.py: the curve's figures per alpha, and the alpha chosen on validation by its stated rule."""

import pytest

from experiments import tradeoff


def member(alpha, seed, valid_rmse, valid_mae, test_mae=0.5, status="completed"):
    return {"alpha": alpha, "seed": seed, "status": status,
            "valid": {"rmse": valid_rmse, "omega_mae": valid_mae},
            "test": {"rmse": 2 * valid_rmse, "rmse_P": 0.3, "omega_mae": test_mae + seed}}


def test_the_curve_averages_seeds_and_chooses_on_validation():
    members = [member(0.0, 0, 0.10, 0.40), member(0.0, 1, 0.12, 0.44),   # best reconstruction, poor omega
               member(0.1, 0, 0.14, 0.20), member(0.1, 1, 0.16, 0.22),   # within 1.5 x 0.11: chosen
               member(1.0, 0, 0.30, 0.10), member(1.0, 1, 0.30, 0.12),   # best omega, reconstruction too poor
               member(0.3, 0, 0.12, 0.05, status="diverged"), member(0.3, 1, 0.12, 0.05)]
    trade = tradeoff.curve({"epochs": 9, "members": members}, "omega", (0.0, 0.1, 0.3, 1.0))
    rows = {r["alpha"]: r for r in trade["rows"]}
    assert rows[0.1]["valid_rmse"] == pytest.approx(0.15) and rows[0.1]["valid_omega_mae"] == pytest.approx(0.21)
    assert rows[0.1]["omega_mae"] == pytest.approx(1.0) and rows[0.1]["omega_mae_std"] == pytest.approx(0.5)
    assert rows[0.3]["diverged"] == 1 and trade["chosen"] == 0.1
    assert tradeoff.choose(trade["rows"], "omega", rmse_factor=3.0) == 1.0  # a looser rule takes the best omega
    text = tradeoff.markdown(trade, {"training mean": 0.6}, "t")
    assert "| **0.1** (chosen) | 2 |" in text and "within 1.5x the best alpha's" in text


def test_nothing_is_chosen_when_every_alpha_diverged():
    rows = [{"alpha": 0.1, "diverged": 1, "valid_rmse": 0.1, "valid_omega_mae": 0.1}]
    assert tradeoff.choose(rows, "omega") is None
