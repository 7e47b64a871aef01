"""Figures a person would rather look at than a table."""

from __future__ import annotations

import os

import numpy as np


def reconstructions(path: str | os.PathLike, t: np.ndarray, x: np.ndarray, x_p: np.ndarray, x_hat: np.ndarray,
                    channels, title: str = "") -> None:
    """Grid of sequences (rows) by channels (columns, at most 3): data, physics-only x_P and full x_hat.

    x, x_p, x_hat: arrays of shape (K, C, T).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, c = x.shape[0], min(x.shape[1], 3)
    fig, axes = plt.subplots(k, c, figsize=(3.6 * c, 1.9 * k), squeeze=False, sharex=True)
    for i in range(k):
        for j in range(c):
            ax = axes[i, j]
            ax.plot(t, x[i, j], "k.", ms=3, label="data")
            ax.plot(t, x_p[i, j], "C0--", lw=1.2, label="physics only $x_P$")
            ax.plot(t, x_hat[i, j], "C3-", lw=1.2, label="full model $\\hat x$")
            if i == 0:
                ax.set_title(channels[j])
    axes[0, 0].legend(fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("t")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
