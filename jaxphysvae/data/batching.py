"""Fixed-shape minibatches, so that a jitted step sees the same shapes every time and never recompiles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, NamedTuple

import numpy as np

from jaxphysvae.errors import DataError

if TYPE_CHECKING:
    import jax

REMAINDERS = ("drop", "pad")


class Batch(NamedTuple):
    """One minibatch.

    Attributes:
      x: float32 (B, C, T) sequences.
      mask: bool (B,), False on padding rows (which repeat real sequences and must be ignored in sums).
      index: int (B,), the sequences' positions in the data set.
    """

    x: np.ndarray
    mask: np.ndarray
    index: np.ndarray


def num_batches(n: int, batch_size: int, remainder: str = "drop") -> int:
    """How many batches `batches` yields for n sequences."""
    return n // batch_size if remainder == "drop" else -(-n // batch_size)


def batches(x: np.ndarray, batch_size: int, key: jax.Array | None = None,
            remainder: str = "drop") -> Iterator[Batch]:
    """Yield batches of `batch_size` sequences of `x` (N, C, T), shuffled by `key` (None keeps the order).

    Args:
      remainder: what happens to the last N mod batch_size sequences: "drop" leaves them out (training, where a
        new permutation each epoch reaches them), "pad" fills the last batch up to full size with repeats of the
        first sequences of the epoch, marked False in `mask` (evaluation, where every sequence must count once).
    """
    n = len(x)
    if remainder not in REMAINDERS:
        raise DataError(f"unknown remainder {remainder!r}; expected one of {REMAINDERS}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"batch size must be a positive integer, got {batch_size!r}")
    if remainder == "drop" and batch_size > n:
        raise DataError(f"batch size {batch_size} is larger than the {n} sequences and remainder='drop' would "
                        f"yield no batch; lower the batch size or use remainder='pad'")
    if key is None:
        order = np.arange(n)
    else:
        import jax  # only for a shuffled order: reading data needs no jax
        order = np.asarray(jax.random.permutation(key, n))
    count = num_batches(n, batch_size, remainder)
    padded = np.resize(order, count * batch_size)  # np.resize repeats the order from its start
    valid = np.arange(count * batch_size) < n
    for b in range(count):
        rows = slice(b * batch_size, (b + 1) * batch_size)
        index = padded[rows]
        yield Batch(x=x[index], mask=valid[rows], index=index)
