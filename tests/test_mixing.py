import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.mixing import mix_sequences
from tests.helpers import augmented_step_setup


def _blend_weights(x: np.ndarray, out: np.ndarray, valid):
    """For each valid row i of out: the (partner j, weight lam) with out_i = x_i + lam (x_j - x_i), found by least
    squares over the candidate partners `valid` (row i itself, unchanged, gives (i, 0))."""
    found = []
    for i in valid:
        if np.array_equal(out[i], x[i]):
            found.append((i, 0.0))
            continue
        fits = []
        for j in valid:
            if j == i:
                continue
            d = (x[j] - x[i]).ravel()
            lam = float(d @ (out[i] - x[i]).ravel() / (d @ d))
            fits.append((np.max(np.abs(x[i] + lam * (x[j] - x[i]) - out[i])), j, lam))
        residual, j, lam = min(fits)
        assert residual < 1e-5, f"row {i} is not a blend of itself with a valid row"
        found.append((j, lam))
    return found


def test_level_zero_returns_the_batch_unchanged():
    x = jax.random.normal(jax.random.key(0), (6, 3, 5))
    out = mix_sequences(x, jnp.ones(6, bool), jax.random.split(jax.random.key(1), 6), jnp.float32(0.0))
    np.testing.assert_array_equal(np.asarray(out), np.asarray(x))


def test_rows_are_blends_with_valid_partners_and_weights_up_to_the_level():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2, 7)).astype(np.float32)
    x[6:] = 1e3  # masked rows: never a partner
    mask = np.arange(8) < 6
    level = 0.4
    weights, partners = [], []
    for seed in range(40):
        out = np.asarray(mix_sequences(jnp.asarray(x), jnp.asarray(mask), jax.random.split(jax.random.key(seed), 8),
                                       jnp.float32(level)))
        found = _blend_weights(x, out, np.flatnonzero(mask))
        for i in range(6):
            j, lam = found[i]
            assert 0.0 <= lam <= level + 1e-6 and mask[j]
            weights.append(lam)
            partners.append(j)
    # lam ~ Uniform(0, level), partners uniform over the 6 valid rows (240 draws)
    assert np.mean(weights) == pytest.approx(level / 2, abs=0.03)
    assert np.max(weights) > 0.9 * level
    assert set(partners) == set(range(6))


def test_draws_come_from_each_sequences_key():
    b = 6
    x = jax.random.normal(jax.random.key(0), (b, 2, 3))
    mask = jnp.ones(b, bool)
    compared = 0
    for seed in range(5):
        keys = jax.random.split(jax.random.key(seed), b)
        forward = mix_sequences(x, mask, keys, jnp.float32(0.5))
        backward = mix_sequences(x[::-1], mask, keys[::-1], jnp.float32(0.5))[::-1]
        found_f = _blend_weights(np.asarray(x), np.asarray(forward), range(b))
        found_b = _blend_weights(np.asarray(x), np.asarray(backward), range(b))
        # a row keeps its key, so its weight and its partner's position in the (reversed) batch: partner j forward
        # is partner b - 1 - j backward (rows whose partner was themselves on either side show no weight: skipped)
        for (jf, lf), (jb, lb) in zip(found_f, found_b):
            if lf > 0 and lb > 0:
                assert lf == pytest.approx(lb, abs=1e-5) and jf == b - 1 - jb
                compared += 1
    assert compared >= 10


def test_train_step_differentiates_the_mixed_batch():
    _, model, fns, hp, state, x, mask, key = augmented_step_setup(mix=0.5)
    _, metrics = fns.train_step(state, (x, mask), key, hp)
    keys = jax.random.split(key, 8)
    mixed = mix_sequences(x, mask, keys, hp.mix)
    loss_mixed, _ = model.batch_loss(state.params, mixed, mask, keys, hp)
    loss_clean, _ = model.batch_loss(state.params, x, mask, keys, hp)
    assert float(metrics["loss"]) == pytest.approx(float(loss_mixed), rel=1e-5)
    assert abs(float(loss_mixed) - float(loss_clean)) > 1e-3 * abs(float(loss_clean))
    # one program for every level: mix is data
    fns.train_step(state, (x, mask), key, hp._replace(mix=jnp.float32(0.0)))
    assert fns.train_step.cache_size() == 1
