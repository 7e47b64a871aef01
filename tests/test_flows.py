import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.config import HParams
from jaxphysvae.flows import Planar, chain, constrain, constrained_dot, flow_forward, split_params, stack_params
from jaxphysvae.model import PhysVAE
from tests.helpers import small_config


def _random_planar(key, d, scale=1.0):
    k1, k2, k3 = jax.random.split(key, 3)
    return (scale * jax.random.normal(k1, (d,)), scale * jax.random.normal(k2, (d,)), jax.random.normal(k3, ()))


def test_log_det_equals_the_jacobian_determinant_in_float64():
    with jax.enable_x64(True):
        for seed in range(20):
            key = jax.random.key(seed)
            u, w, b = _random_planar(key, 4, scale=3.0 if seed % 2 else 0.5)
            z = 2 * jax.random.normal(jax.random.fold_in(key, 9), (4,))
            bij = Planar(u, w, b)
            _, log_det = bij.forward_and_log_det(z)
            jac = jax.jacfwd(bij.forward)(z)
            assert float(log_det) == pytest.approx(float(jnp.log(jnp.abs(jnp.linalg.det(jac)))), rel=1e-9, abs=1e-9)


def test_log_det_near_the_singular_boundary():
    """w^T u far below -1 is projected to w^T u_hat = -1 + softplus(w^T u) ~ -1: at a = 0 the map is nearly
    singular, with det J = 1 + w^T u_hat = softplus(w^T u)."""
    with jax.enable_x64(True):
        w = jnp.array([1.0, 2.0, -0.5])
        z = jnp.array([0.2, -0.1, 0.0])  # w^T z + b = 0: the steepest point
        for wu in (-12.0, -30.0):
            bij = Planar(wu * w / jnp.sum(w * w), w, jnp.float64(0.0))
            _, log_det = bij.forward_and_log_det(z)
            assert float(log_det) == pytest.approx(float(jnp.log(jax.nn.softplus(wu))), rel=1e-9)
            if wu == -12.0:  # det ~ 6e-6, well above float64 rounding of the Jacobian
                det = jnp.linalg.det(jax.jacfwd(bij.forward)(z))
                assert float(log_det) == pytest.approx(float(jnp.log(jnp.abs(det))), rel=1e-6)


def test_constraint_keeps_w_dot_u_hat_at_least_minus_one():
    key = jax.random.key(0)
    with jax.enable_x64(True):
        for scale in (0.01, 1.0, 10.0, 1000.0):
            u = scale * jax.random.normal(jax.random.fold_in(key, 1), (5000, 3), jnp.float64)
            w = scale * jax.random.normal(jax.random.fold_in(key, 2), (5000, 3), jnp.float64)
            # exact in arithmetic; the product's rounding error grows with |w| |u|
            assert float(jnp.min(jnp.sum(w * constrain(u, w), axis=-1))) >= -1.0 - 1e-12 * max(1.0, scale**2)
            assert float(jnp.min(constrained_dot(u, w))) >= -1.0
    # float32, extreme parameters: the exact m(w^T u) keeps every log-determinant finite
    for scale in (10.0, 1000.0):
        u = scale * jax.random.normal(jax.random.fold_in(key, 3), (5000, 3))
        w = scale * jax.random.normal(jax.random.fold_in(key, 4), (5000, 3))
        z = jax.random.normal(jax.random.fold_in(key, 5), (5000, 3))
        _, log_det = Planar(u, w, jnp.zeros(5000)).forward_and_log_det(z)
        assert bool(jnp.all(jnp.isfinite(log_det))) and float(jnp.min(constrained_dot(u, w))) >= -1.0


def test_inverse_undoes_forward():
    with jax.enable_x64(True):
        u, w, b = _random_planar(jax.random.key(3), 3, scale=2.0)
        z = jax.random.normal(jax.random.key(4), (10, 3))
        bij = Planar(u, w, b)
        y, log_det = bij.forward_and_log_det(z)
        back, inv_log_det = bij.inverse_and_log_det(y)
        np.testing.assert_allclose(back, z, atol=1e-10)
        np.testing.assert_allclose(inv_log_det, -log_det, atol=1e-10)


def test_flowed_density_integrates_to_one_in_1d_and_2d():
    with jax.enable_x64(True):
        params1 = [_random_planar(jax.random.key(s), 1, scale=1.0) for s in range(3)]
        dist1 = distrax.Transformed(distrax.MultivariateNormalDiag(jnp.zeros(1), jnp.ones(1)), chain(params1))
        grid = jnp.linspace(-20, 20, 200001)[:, None]
        assert float(jnp.trapezoid(jnp.exp(dist1.log_prob(grid)), grid[:, 0])) == pytest.approx(1.0, abs=1e-6)

        params2 = [_random_planar(jax.random.key(20 + s), 2, scale=1.0) for s in range(3)]
        dist2 = distrax.Transformed(distrax.MultivariateNormalDiag(jnp.zeros(2), jnp.ones(2)), chain(params2))
        axis = jnp.linspace(-12, 12, 601)
        xx, yy = jnp.meshgrid(axis, axis, indexing="ij")
        density = jnp.exp(dist2.log_prob(jnp.stack([xx, yy], -1).reshape(-1, 2))).reshape(xx.shape)
        total = jnp.trapezoid(jnp.trapezoid(density, axis, axis=1), axis)
        assert float(total) == pytest.approx(1.0, abs=1e-6)
        # the flow_forward helper used in training agrees with distrax's sampling path
        z0 = jax.random.normal(jax.random.key(5), (7, 2))
        zk, log_det = flow_forward(z0, jax.tree.map(lambda *a: jnp.stack(a), *params2))
        zk_chain, log_det_chain = chain(params2).forward_and_log_det(z0)
        np.testing.assert_allclose(zk, zk_chain, atol=1e-12)
        np.testing.assert_allclose(log_det, log_det_chain, atol=1e-12)


def _flow_model(**changes):
    return PhysVAE(small_config(physics="hamiltonian", dim_z_phy=2, dim_z_aux1=-1, dim_z_aux2=3, ppc="residual",
                                **changes), 3, 20, 0.05)


def test_monte_carlo_kl_with_no_flow_averages_to_the_closed_form():
    closed = _flow_model(flow_phy=0, flow_aux2=0)
    params = closed.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 20)) * 0.3, jnp.float32)
    post = closed.encode(params, x)
    _, kl_closed = closed.latents(params, post, None)
    # the Monte-Carlo form log q0(z) - log p(z), averaged over many samples, with K = 0
    q0 = [distrax.Normal(m, jnp.exp(0.5 * v)) for m, v in zip(post.mean, post.lnvar)]
    priors = closed.posterior.priors()
    z = [q.sample(seed=jax.random.key(g), sample_shape=200_000) for g, q in enumerate(q0)]
    mc = sum(jnp.mean(jnp.sum(q.log_prob(s) - p.log_prob(s), -1), 0) for q, p, s in zip(q0, priors, z))
    np.testing.assert_allclose(mc, kl_closed, rtol=2e-2, atol=2e-2)


def test_flow_kl_uses_the_log_determinants_unless_asked_to_reproduce_the_published_code():
    exact, published = _flow_model(flow_phy=3, flow_aux2=4), _flow_model(flow_phy=3, flow_aux2=4,
                                                                          flow_kl="published_base_kl")
    params = exact.init(jax.random.key(1))
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 3, 20)) * 0.3, jnp.float32)
    keys = jax.random.split(jax.random.key(2), 4)
    post = exact.encode(params, x)
    z_exact, kl_exact = exact.latents(params, post, keys)
    z_pub, kl_pub = published.latents(params, post, keys)
    np.testing.assert_allclose(z_exact.aux2, z_pub.aux2)  # the same samples z_K
    base = sum(jnp.sum(distrax.Normal(m, jnp.exp(0.5 * v)).kl_divergence(p), -1)
               for m, v, p in zip(post.mean, post.lnvar, exact.posterior.priors()))
    np.testing.assert_allclose(kl_pub, base, rtol=1e-6)  # the published objective ignores the flows
    # the exact one is, per sequence and summed over the flowed groups, log q0(z0) - log|det J| - log p(zK) for
    # the same draws, with det J the determinant of the flow's Jacobian (computed here by differentiation)
    expected = np.zeros(4)
    for g, (steps, width, z_k) in enumerate([(3, 2, z_exact.phy), (0, 0, None), (4, 3, z_exact.aux2)]):
        if not steps:
            continue
        m, v, prior = post.mean[g], post.lnvar[g], exact.posterior.priors()[g]
        z0 = m + jnp.exp(0.5 * v) * jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, g), m.shape[1:]))(keys)
        for i in range(4):
            flow = lambda z: flow_forward(z, stack_params(post.flows[g][i], steps, width))[0]
            np.testing.assert_allclose(flow(z0[i]), z_k[i], rtol=1e-5, atol=1e-6)
            log_det = np.linalg.slogdet(np.asarray(jax.jacfwd(flow)(z0[i]), np.float64))[1]
            expected[i] += (np.sum(distrax.Normal(m[i], jnp.exp(0.5 * v[i])).log_prob(z0[i])) - log_det
                            - np.sum(prior.log_prob(z_k[i])))
    np.testing.assert_allclose(kl_exact, expected, rtol=1e-4, atol=1e-4)


def test_flow_kl_is_the_kl_of_the_flowed_distribution():
    """Per draw, log q0(z0) - sum log|det J| = log q_K(z_K), the density of distrax's Transformed distribution
    (evaluated through the bijector's inverse); averaged over many draws, the KL estimate is E[log q_K - log p]
    under samples of that distribution."""
    model = _flow_model(flow_phy=0, flow_aux2=4)
    params = model.init(jax.random.key(3))
    x = jnp.asarray(np.random.default_rng(3).normal(size=(2, 3, 20)) * 0.3, jnp.float32)
    post = model.encode(params, x)
    # 16000 draws in chunks of 4000: a jitted vmap over more than 5461 draws of this (2, 3)-wide group meets an XLA
    # CPU miscompilation in jaxlib 0.10.2 (docs/known_issues.md)
    draws = 16_000
    keys = jax.random.split(jax.random.key(4), (draws, 2))
    sample = jax.jit(jax.vmap(lambda k: model.latents(params, post, k)))
    chunks = [sample(keys[i:i + 4000]) for i in range(0, draws, 4000)]
    z, kl = jax.tree.map(lambda *a: jnp.concatenate(a), *chunks)
    # the z_P group (no flow) contributes its closed form; the rest is the flowed z_A2 group
    prior_p = model.posterior.priors()[0]
    closed_p = np.asarray(jnp.sum(distrax.Normal(post.mean.phy, jnp.exp(0.5 * post.lnvar.phy)).kl_divergence(prior_p),
                                  -1))
    for i in range(2):
        base = distrax.MultivariateNormalDiag(post.mean.aux2[i], jnp.exp(0.5 * post.lnvar.aux2[i]))
        flowed = distrax.Transformed(base, chain(split_params(post.flows.aux2[i], 4, 3)))
        prior = distrax.MultivariateNormalDiag(jnp.zeros(3), jnp.ones(3))
        z_k = z.aux2[:50, i]
        per_draw = kl[:50, i] - closed_p[i]
        np.testing.assert_allclose(per_draw, flowed.log_prob(z_k) - prior.log_prob(z_k), rtol=1e-3, atol=1e-3)
        samples, log_q = flowed.sample_and_log_prob(seed=jax.random.key(10 + i), sample_shape=draws)
        reference = np.mean(log_q - prior.log_prob(samples))
        estimate = np.mean(kl[:, i]) - closed_p[i]
        spread = np.std(log_q - prior.log_prob(samples)) / np.sqrt(draws)
        assert abs(estimate - reference) < 5 * spread + 1e-3, (estimate, reference, spread)


def test_flow_model_trains_with_finite_loss():
    model = _flow_model(flow_phy=5, flow_aux2=12)
    params = model.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3, 20)) * 0.3, jnp.float32)
    loss, metrics = jax.jit(model.loss)(params, x, jnp.ones(4, bool), jax.random.key(0),
                                        HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-2.0))
    assert np.isfinite(float(loss)) and np.isfinite(float(metrics["kl"]))


def test_a_flow_margin_keeps_a_step_invertible_where_softplus_underflows():
    """At w^T u = -200, softplus(w^T u) underflows in float32: without a margin the step is singular where
    tanh(w^T z + b) = 0 and its log-determinant is -inf (how training diverged, docs/divergence.md); with a margin
    the log-determinant is that of the Jacobian (computed here by differentiation) and at least log(margin)."""
    w = jnp.array([1.0, 0.0])
    u = jnp.array([-200.0, 3.0])
    b = jnp.float32(0.0)
    z = jnp.array([0.0, 0.5])  # w^T z + b = 0: where the singular step folds
    _, log_det = Planar(u, w, b).forward_and_log_det(z)
    assert float(log_det) == -np.inf
    with jax.enable_x64(True):  # the Jacobian's determinant 1 + w^T u_hat cancels: check it in float64
        u, w, z = (jnp.asarray(a, jnp.float64) for a in (u, w, z))
        for margin in (0.01, 0.2):
            step = Planar(u, w, jnp.float64(0.0), margin=margin)
            y, log_det = step.forward_and_log_det(z)
            jac = jax.jacfwd(lambda v: step.forward_and_log_det(v)[0])(z)
            np.testing.assert_allclose(log_det, np.log(abs(np.linalg.det(np.asarray(jac)))), rtol=1e-7)
            np.testing.assert_allclose(log_det, np.log(margin), rtol=1e-7)  # the bound is reached at h = 0
            zs = jax.random.normal(jax.random.key(0), (500, 2), jnp.float64) * 3
            assert float(jnp.min(step.forward_and_log_det(zs)[1])) >= np.log(margin) - 1e-12
            np.testing.assert_allclose(step.inverse_and_log_det(y)[0], z, atol=1e-8)


def test_a_lower_bound_on_the_log_variances_is_smooth_and_holds():
    free = _flow_model()
    bounded = _flow_model(lnvar_min=-3.0)
    params = free.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3, 20)) * 3.0, jnp.float32)
    raw, clipped = free.encode(params, x).lnvar, bounded.encode(params, x).lnvar
    for r, c in zip(raw, clipped):
        if not r.size:
            continue
        np.testing.assert_allclose(c, -3.0 + np.log1p(np.exp(np.asarray(r, np.float64) + 3.0)), rtol=1e-5, atol=1e-6)
        assert float(jnp.min(c)) > -3.0
