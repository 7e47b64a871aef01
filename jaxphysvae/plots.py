"""Figures a person would rather look at than a table."""

from __future__ import annotations

import os

import numpy as np


def reconstructions(path: str | os.PathLike, t: np.ndarray, x: np.ndarray, x_p: np.ndarray, x_hat: np.ndarray,
                    channels, titles=None, title: str = "") -> None:
    """Data, physics-only x_P and full reconstruction x_hat of K sequences, one panel per sequence and channel.

    x, x_p, x_hat: arrays of shape (K, C, T); at most 3 channels are drawn (rows: sequences, columns: channels;
    a single channel is laid out two sequences per row). titles: optional K panel titles.
    """
    import textwrap

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, c = x.shape[0], min(x.shape[1], 3)
    panels = [(i, j) for i in range(k) for j in range(c)]
    cols = 2 if c == 1 else c
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.2 * rows), squeeze=False, sharex=True)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (i, j) in zip(axes.flat, panels):
        ax.plot(t, x[i, j], "k.", ms=3, label="data")
        ax.plot(t, x_p[i, j], "C0--", lw=1.2, label="physics only $x_P$")
        ax.plot(t, x_hat[i, j], "C3-", lw=1.2, label="full model $\\hat x$")
        label = channels[j] if titles is None else f"{titles[i]}" + (f", {channels[j]}" if c > 1 else "")
        ax.set_title(label, fontsize=9)
    axes.flat[0].legend(fontsize=7, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("t")
    if title:
        fig.suptitle("\n".join(textwrap.wrap(title, 60 * cols // 2 + 20)), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
