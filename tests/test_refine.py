"""jaxphysvae.refine: the fitted code starts from the encoder's, finds a planted code, does not depend on the
batching, and refuses bad arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.config import HParams
from jaxphysvae.errors import ConfigError, DataError
from jaxphysvae.model import PhysVAE
from jaxphysvae.predict import predict
from jaxphysvae.refine import refine
from tests.helpers import pendulum_splits, small_config


@pytest.fixture(scope="module")
def model_and_params():
    model = PhysVAE(small_config(), 1, 50, 0.05)
    return model, model.init(jax.random.key(0), HParams.create(x_lnvar=-2.0))


def test_no_steps_is_the_encoder_s_code(model_and_params):
    model, params = model_and_params
    x = pendulum_splits()["test"].x
    out, mean = refine(model, params, x, steps=0), predict(model, params, x)
    for name in ("z_phy", "z_aux1", "z_aux2", "s0"):
        np.testing.assert_allclose(out[name], mean[name if name == "s0" else name + "_mean"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["x_PAB"], mean["x_PAB"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["sse"], ((mean["x_PAB"] - x) ** 2).sum((1, 2)), rtol=1e-5)
    np.testing.assert_array_equal(out["sse"], out["sse_start"])


def test_a_planted_code_is_found_and_the_errors_are_those_of_the_returned_code(model_and_params):
    model, params = model_and_params
    x = pendulum_splits()["test"].x
    post = model.encode(params, x)
    z, _ = model.latents(params, post, None)
    # sequences the decoder makes exactly, from codes away from what the encoder gives for them
    shift = lambda a, k: a + 0.3 * jax.random.normal(jax.random.key(k), a.shape)
    planted = z._replace(phy=model.physics.clip(shift(z.phy, 1)), aux1=shift(z.aux1, 2), aux2=shift(z.aux2, 3))
    target = np.asarray(model.decode(params, planted, shift(post.s0, 4)).x_PAB)
    out = refine(model, params, target, steps=200, lr=3e-2)
    ratio = out["sse"] / out["sse_start"]
    assert np.median(ratio) < 0.01 and ratio.max() < 0.05
    # the reported error and reconstruction are those of the returned code, recomputed through the decoder
    fitted = z._replace(phy=jnp.asarray(out["z_phy"]), aux1=jnp.asarray(out["z_aux1"]), aux2=jnp.asarray(out["z_aux2"]))
    x_hat = np.asarray(model.decode(params, fitted, jnp.asarray(out["s0"])).x_PAB)
    np.testing.assert_allclose(out["x_PAB"], x_hat, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["sse"], ((x_hat - target) ** 2).sum((1, 2)), rtol=1e-3, atol=1e-7)


def test_the_batching_does_not_change_the_fit(model_and_params):
    model, params = model_and_params
    x = pendulum_splits()["test"].x
    # 200 steps at lr 3e-2: the program of the planted-code test, for the whole batch
    whole, batched = refine(model, params, x, steps=200, lr=3e-2), refine(model, params, x, steps=200, lr=3e-2,
                                                                          batch_size=5)
    for name in whole:
        np.testing.assert_allclose(batched[name], whole[name], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"steps": -1}, ConfigError, "steps"), ({"steps": 2.5}, ConfigError, "steps"), ({"lr": 0.0}, ConfigError, "lr"),
    ({"lr": float("nan")}, ConfigError, "lr"), ({"batch_size": 0}, ConfigError, "batch_size")])
def test_bad_arguments_are_refused(model_and_params, kwargs, error, words):
    model, params = model_and_params
    with pytest.raises(error, match=words):
        refine(model, params, pendulum_splits()["test"].x, **kwargs)


def test_bad_data_are_refused(model_and_params):
    model, params = model_and_params
    x = pendulum_splits()["test"].x.copy()
    x[0, 0, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        refine(model, params, x)
    with pytest.raises(DataError, match="shape|channels|length"):
        refine(model, params, x[:, :, :20])


def test_a_batch_attention_model_starts_from_predict_s_code_for_the_same_batches():
    model = PhysVAE(small_config(attention_aux2="batch"), 1, 50, 0.05)
    params = model.init(jax.random.key(1), HParams.create(x_lnvar=-2.0))
    x = pendulum_splits()["test"].x  # 16 sequences in batches of 5: the last one padded, the padding masked out
    out, mean = refine(model, params, x, steps=0, batch_size=5), predict(model, params, x, batch_size=5)
    np.testing.assert_allclose(out["z_aux2"], mean["z_aux2_mean"], rtol=1e-5, atol=1e-6)
