import jax
import numpy as np
import pytest

from jaxphysvae.data import batches, num_batches
from jaxphysvae.errors import DataError

X = np.arange(10 * 2 * 3, dtype=np.float32).reshape(10, 2, 3)


def test_pad_covers_every_sequence_once_with_fixed_shapes():
    out = list(batches(X, 4, jax.random.key(0), remainder="pad"))
    assert len(out) == num_batches(10, 4, "pad") == 3
    assert all(b.x.shape == (4, 2, 3) and b.mask.shape == (4,) for b in out)
    seen = np.concatenate([b.index[b.mask] for b in out])
    assert sorted(seen.tolist()) == list(range(10))
    assert [int(b.mask.sum()) for b in out] == [4, 4, 2]
    for b in out:
        np.testing.assert_array_equal(b.x, X[b.index])


def test_drop_leaves_out_the_remainder_and_shuffles_by_key():
    a = [b.index for b in batches(X, 4, jax.random.key(1))]
    b = [b.index for b in batches(X, 4, jax.random.key(1))]
    c = [b.index for b in batches(X, 4, jax.random.key(2))]
    assert len(a) == num_batches(10, 4) == 2
    np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))
    assert len(set(np.concatenate(a).tolist())) == 8
    ordered = [b.index for b in batches(X, 5)]
    np.testing.assert_array_equal(np.concatenate(ordered), np.arange(10))


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "positive integer"),
    ({"batch_size": 11}, "larger than the 10 sequences"),
    ({"batch_size": 4, "remainder": "keep"}, "unknown remainder"),
])
def test_bad_batching_requests(kwargs, match):
    with pytest.raises(DataError, match=match):
        next(batches(X, **kwargs))
