"""jaxphysvae.refine: the fitted code starts from the encoder's, finds a planted code (by Adam and by Gauss-Newton),
is a stationary point of the error (Gauss-Newton), fits only the parts asked for, does not depend on the batching,
and refuses bad arguments; the decoder's forward-mode solve, which Gauss-Newton differentiates, against its
reverse-mode one."""

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


def encoded(model, params, x):
    """The encoder's posterior of x and its mean latents."""
    post = model.encode(params, x)
    return post, model.latents(params, post, None)[0]


def test_no_steps_is_the_encoder_s_code(model_and_params):
    model, params = model_and_params
    x = pendulum_splits()["test"].x
    out, mean = refine(model, params, x, steps=0), predict(model, params, x)
    for name in ("z_phy", "z_aux1", "z_aux2", "s0"):
        np.testing.assert_allclose(out[name], mean[name if name == "s0" else name + "_mean"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["x_PAB"], mean["x_PAB"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["sse"], ((mean["x_PAB"] - x) ** 2).sum((1, 2)), rtol=1e-5)
    np.testing.assert_array_equal(out["sse"], out["sse_start"])


@pytest.mark.parametrize("fit", [dict(steps=200, lr=3e-2), dict(method="gauss-newton", steps=10)],
                         ids=["adam", "gauss-newton"])
def test_a_planted_code_is_found_and_the_errors_are_those_of_the_returned_code(model_and_params, fit):
    model, params = model_and_params
    x = pendulum_splits()["test"].x
    post, z = encoded(model, params, x)
    # sequences the decoder makes exactly, from codes away from what the encoder gives for them
    shift = lambda a, k: a + 0.3 * jax.random.normal(jax.random.key(k), a.shape)
    planted = z._replace(phy=model.physics.clip(shift(z.phy, 1)), aux1=shift(z.aux1, 2), aux2=shift(z.aux2, 3))
    target = np.asarray(model.decode(params, planted, shift(post.s0, 4)).x_PAB)
    out = refine(model, params, target, **fit)
    ratio = out["sse"] / out["sse_start"]
    assert np.median(ratio) < 0.01 and ratio.max() < 0.05
    # the reported error and reconstruction are those of the returned code, recomputed through the decoder
    fitted = z._replace(phy=jnp.asarray(out["z_phy"]), aux1=jnp.asarray(out["z_aux1"]), aux2=jnp.asarray(out["z_aux2"]))
    x_hat = np.asarray(model.decode(params, fitted, jnp.asarray(out["s0"])).x_PAB)
    np.testing.assert_allclose(out["x_PAB"], x_hat, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["sse"], ((x_hat - target) ** 2).sum((1, 2)), rtol=1e-3, atol=1e-7)


def test_fitting_the_initial_states_alone_keeps_the_latents_and_stops_where_their_gradient_vanishes(
        model_and_params):
    model, params = model_and_params
    x = pendulum_splits()["test"].x
    post, z = encoded(model, params, x)
    out = refine(model, params, x, parts=("s0",), method="gauss-newton", steps=20)
    for name, kept in (("z_phy", z.phy), ("z_aux1", z.aux1), ("z_aux2", z.aux2)):
        np.testing.assert_array_equal(out[name], np.asarray(kept))
    assert np.all(out["sse"] <= out["sse_start"]) and out["sse"].sum() < 0.9 * out["sse_start"].sum()
    # the error's gradient in s0 (reverse mode through the default solve) vanishes at the fitted s0; in the kept
    # latents it does not
    sse = lambda latents, s0: jnp.sum((model.decode(params, latents, s0).x_PAB - x) ** 2)
    grad_z, grad_s0 = jax.grad(sse, argnums=(0, 1))(z, jnp.asarray(out["s0"]))
    _, grad_s0_start = jax.grad(sse, argnums=(0, 1))(z, post.s0)
    assert np.linalg.norm(grad_s0) < 1e-3 * np.linalg.norm(grad_s0_start)
    assert np.linalg.norm(np.asarray(grad_z.aux2)) > 1e-2 * np.linalg.norm(grad_s0_start)


@pytest.mark.parametrize("fit", [dict(steps=50, lr=3e-2), dict(method="gauss-newton", steps=3)],
                         ids=["adam", "gauss-newton"])
def test_fitting_some_parts_keeps_the_others(model_and_params, fit):
    model, params = model_and_params
    x = pendulum_splits()["test"].x
    post, z = encoded(model, params, x)
    out = refine(model, params, x, parts="phy, aux1,aux2", **fit)
    np.testing.assert_array_equal(out["s0"], np.asarray(post.s0))
    out = refine(model, params, x, parts=("s0", "aux1"), **fit)
    np.testing.assert_array_equal(out["z_phy"], np.asarray(z.phy))
    np.testing.assert_array_equal(out["z_aux2"], np.asarray(z.aux2))
    assert np.all(out["sse"] < out["sse_start"])


def test_the_batching_does_not_change_the_fit(model_and_params):
    model, params = model_and_params
    x = pendulum_splits()["test"].x
    # 200 steps at lr 3e-2: the program of the planted-code test, for the whole batch
    whole, batched = refine(model, params, x, steps=200, lr=3e-2), refine(model, params, x, steps=200, lr=3e-2,
                                                                          batch_size=5)
    for name in whole:
        np.testing.assert_allclose(batched[name], whole[name], rtol=1e-4, atol=1e-6)


def test_gauss_newton_stops_where_the_error_s_gradient_vanishes(model_and_params):
    model, params = model_and_params
    x = pendulum_splits()["test"].x  # the generator's pendulums, which the untrained decoder cannot make exactly
    post, z = encoded(model, params, x)
    out = refine(model, params, x, method="gauss-newton", steps=20)
    assert np.all(out["sse"] < 0.9 * out["sse_start"])

    def projected_gradient_norms(code):
        """(B,) the norm of each sequence's gradient of its error in its code, by reverse mode through the default
        solve (not the Jacobian Gauss-Newton built), less what pushes z_P out of its range: where z_P sits at a
        bound, the error may fall only outward (the fit's optimum is then on the bound)."""
        sse = lambda c: jnp.sum((model.decode(params, c[0], c[1]).x_PAB - x) ** 2)
        (grad_z, grad_s0) = jax.grad(sse)(code)
        low, high = (np.asarray(b) for b in model.physics.z_range)
        phy, g = np.asarray(code[0].phy), np.asarray(grad_z.phy)
        g = np.where(phy <= low, np.minimum(g, 0.0), np.where(phy >= high, np.maximum(g, 0.0), g))
        parts = [g, grad_z.aux1, grad_z.aux2, grad_s0]
        return np.linalg.norm(np.concatenate([np.asarray(v).reshape(len(x), -1) for v in parts], 1), axis=1)

    fitted = z._replace(phy=jnp.asarray(out["z_phy"]), aux1=jnp.asarray(out["z_aux1"]), aux2=jnp.asarray(out["z_aux2"]))
    ratio = projected_gradient_norms((fitted, jnp.asarray(out["s0"]))) / projected_gradient_norms((z, post.s0))
    assert ratio.max() < 1e-3


def test_the_forward_mode_solve_is_the_reverse_mode_solve():
    model = PhysVAE(small_config(), 1, 50, 0.05)
    params = model.init(jax.random.key(2), HParams.create(x_lnvar=-2.0))
    x = pendulum_splits()["test"].x[:4]
    z, _ = model.latents(params, model.encode(params, x), None)
    s0 = model.encode(params, x).s0
    forward = lambda s: model.decode(params, z, s, forward_mode=True).x_PAB
    reverse = lambda s: model.decode(params, z, s).x_PAB
    np.testing.assert_allclose(forward(s0), reverse(s0), rtol=1e-6, atol=1e-7)
    # each sequence's trajectory depends on its own initial state only: the (B, C, T, B, S) Jacobian is
    # block-diagonal, and jacfwd of the forward-mode solve equals jacrev of the reverse-mode one
    np.testing.assert_allclose(jax.jacfwd(forward)(s0), jax.jacrev(reverse)(s0), rtol=1e-4, atol=1e-6)
    with pytest.raises(TypeError, match="forward-mode"):  # the default solve is differentiable in reverse mode only
        jax.jacfwd(reverse)(s0)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"steps": -1}, ConfigError, "steps"), ({"steps": 2.5}, ConfigError, "steps"), ({"lr": 0.0}, ConfigError, "lr"),
    ({"lr": float("nan")}, ConfigError, "lr"), ({"batch_size": 0}, ConfigError, "batch_size"),
    ({"method": "newton"}, ConfigError, "unknown method 'newton'"),
    ({"method": "gauss-newton", "damping": 0.0}, ConfigError, "damping"),
    ({"method": "gauss-newton", "damping": float("inf")}, ConfigError, "damping"),
    ({"parts": ()}, ConfigError, "parts"), ({"parts": ("s0", "z_P")}, ConfigError, "unknown: 'z_P'")])
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
