"""ModelConfig.aux2_least_squares: z_A2's posterior mean is the least-squares code of the linear residual, given the
rest of the posterior; checked against numpy's lstsq on the residual layer's own kernel."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.config import HParams
from jaxphysvae.encoder import Noise
from jaxphysvae.errors import ConfigError
from jaxphysvae.model import PhysVAE
from tests.helpers import small_config

C, T = 1, 50
STATS = {"std": np.full(C, 0.3, np.float32), "min": np.full(C, -1.0, np.float32), "max": np.full(C, 1.0, np.float32)}


def _models():
    """The same linear-residual pendulum model with the encoder's z_A2 head and with the least-squares mean."""
    changes = dict(residual_hidden=(), dim_z_aux2=3)
    plain = PhysVAE(small_config(**changes), C, T, 0.05, data_stats=STATS)
    fitted = PhysVAE(small_config(aux2_least_squares=True, **changes), C, T, 0.05, data_stats=STATS)
    params = plain.init(jax.random.key(0))
    (name, dense), = params["nets"]["residual"]["params"].items()
    bias = jax.random.normal(jax.random.key(1), dense["bias"].shape) * 0.1  # initialised at 0: make it count
    params["nets"]["residual"]["params"][name] = {**dense, "bias": bias}
    return plain, fitted, params


def _lstsq_code(plain, params, x, post):
    """The code z_A2 minimising ||x - x_PAB|| with z_P, z_A1 at the plain posterior's means, in float64 numpy:
    x_PAB = x_PA + [z_P, z_A1, z_A2] K + bias, K and bias the residual layer's own parameters."""
    (dense,) = params["nets"]["residual"]["params"].values()  # residual_hidden=(): one Dense layer
    kernel, bias = np.asarray(dense["kernel"], np.float64), np.asarray(dense["bias"], np.float64)
    z, _ = plain.latents(params, post, None)
    x_pa = np.asarray(plain.decode(params, z, post.s0).x_PA, np.float64).reshape(len(x), -1)
    d = plain.dims
    rest = np.concatenate([np.asarray(z.phy), np.asarray(z.aux1)], -1) @ kernel[:d.phy + d.aux1]
    target = np.asarray(x, np.float64).reshape(len(x), -1) - x_pa - rest - bias
    return np.linalg.lstsq(kernel[d.phy + d.aux1:].T, target.T, rcond=None)[0].T


def test_the_mean_of_z_aux2_is_the_least_squares_code_and_the_rest_of_the_posterior_is_the_encoders():
    plain, fitted, params = _models()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(5, C, T)) * 0.3, jnp.float32)
    post, post_fitted = plain.encode(params, x), fitted.encode(params, x)
    expected = _lstsq_code(plain, params, x, post)
    np.testing.assert_allclose(np.asarray(post_fitted.mean.aux2), expected, rtol=2e-3, atol=2e-4)
    assert not np.allclose(np.asarray(post.mean.aux2), expected, atol=1e-2)  # the head alone is elsewhere
    for a, b in [(post.mean.phy, post_fitted.mean.phy), (post.mean.aux1, post_fitted.mean.aux1),
                 (post.lnvar.aux2, post_fitted.lnvar.aux2), (post.s0, post_fitted.s0)]:
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the fitted code is a minimum of the reconstruction's squared error in z_A2
    z, _ = fitted.latents(params, post_fitted, None)
    sse = lambda aux2: jnp.sum((fitted.decode(params, z._replace(aux2=aux2), post_fitted.s0).x_PAB - x) ** 2)
    gradient = np.asarray(jax.grad(sse)(z.aux2))
    start = np.asarray(jax.grad(sse)(post.mean.aux2))
    assert np.abs(gradient).max() < 1e-3 * np.abs(start).max()


def test_with_input_noise_the_code_fits_what_the_encoder_read():
    plain, fitted, params = _models()
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, C, T)) * 0.3, jnp.float32)
    noise = Noise("gaussian", jnp.float32(0.5), jax.random.split(jax.random.key(3), 4))
    seen = plain.encoder.seen(x, noise)
    assert not np.allclose(np.asarray(seen), np.asarray(x), atol=1e-2)
    post = plain.encode(params, x, noise)
    expected = _lstsq_code(plain, params, seen, post)
    np.testing.assert_allclose(np.asarray(fitted.encode(params, x, noise).mean.aux2), expected, rtol=2e-3,
                               atol=2e-4)


def test_the_fitted_mean_is_differentiable_and_the_loss_gradient_finite():
    _, fitted, params = _models()
    x = jnp.asarray(np.random.default_rng(2).normal(size=(4, C, T)) * 0.3, jnp.float32)
    hp = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-2.0)
    grads = jax.grad(lambda p: fitted.loss(p, x, jnp.ones(4, bool), jax.random.key(0), hp)[0])(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    # the fitted mean's derivative along a change of the residual layer is the finite difference's
    (name, dense), = params["nets"]["residual"]["params"].items()
    direction = jax.random.normal(jax.random.key(4), dense["kernel"].shape)

    def fitted_mean(eps):
        moved = jax.tree.map(lambda a: a, params)
        moved["nets"]["residual"]["params"][name] = {**dense, "kernel": dense["kernel"] + eps * direction}
        return jnp.sum(fitted.encode(moved, x).mean.aux2 * jnp.arange(1.0, 4.0))

    _, derivative = jax.jvp(fitted_mean, (0.0,), (1.0,))
    h = 1e-2
    assert float(derivative) == pytest.approx(float((fitted_mean(h) - fitted_mean(-h)) / (2 * h)), rel=2e-2)


@pytest.mark.parametrize("changes, need", [
    (dict(residual_hidden=(16,)), r"a linear residual \(residual_hidden=\[\]\)"),
    (dict(residual_hidden=(), dim_z_aux2=-1), r"z_A2 \(dim_z_aux2 >= 1\)"),
    (dict(residual_hidden=(), flow_aux2=2), r"no z_A2 flow"),
    (dict(residual_hidden=(), attention_aux2="seq"), r"no z_A2 attention context"),
    (dict(residual_hidden=(), time_warp=0.1), r"no time warp"),
    (dict(residual_hidden=(), attention_phy="batch"), r"no batch attention context on z_P or z_A1"),
])
def test_a_decoder_not_linear_in_z_aux2_is_refused_by_name(changes, need):
    with pytest.raises(ConfigError, match=f"aux2_least_squares fits z_A2 .* needs .*{need}"):
        small_config(aux2_least_squares=True, **changes)
