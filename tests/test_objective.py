"""The objective, assembled and differentiated as METHOD.md says: values recomputed independently from the decoder's
outputs under the same keys, stop-gradients checked on the parameters they protect, padding rows that change
nothing, the integration grid against a closed form, and each built-in system's observation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.config import HParams
from jaxphysvae.model import PhysVAE
from jaxphysvae.physics import Diffusion, Hamiltonian, Pendulum
from jaxphysvae.physics.integrate import SolverConfig, integrate
from jaxphysvae.train import make_functions
from tests.helpers import assert_trees_close, pendulum_splits, small_config

# distinct, non-zero weights, so that a term with the wrong weight (or a weight on the wrong term) shows
HP = HParams.create(kl_weight=0.7, alpha=0.3, beta=0.11, gamma=0.05, x_lnvar=-2.5)


def _sq(a, b):
    return np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2, axis=(1, 2))


def _gaussian_kl(mean, lnvar, prior_mean, prior_std):
    """KL(N(mean, e^lnvar) || N(prior_mean, prior_std^2)) summed over the last axis, in float64."""
    mean, var = np.asarray(mean, np.float64), np.exp(np.asarray(lnvar, np.float64))
    s2 = np.asarray(prior_std, np.float64) ** 2
    return np.sum(0.5 * (var / s2 + (mean - prior_mean) ** 2 / s2 - 1 - np.log(var) + np.log(s2)), axis=-1)


@pytest.fixture(scope="module")
def pendulum_batch():
    return jnp.asarray(pendulum_splits(n=(8, 1, 1))["train"].x)


@pytest.mark.parametrize("ppc", ["all", "residual"])
def test_objective_is_assembled_term_by_term(ppc, pendulum_batch):
    """The pendulum phys-VAE with its in-ODE correction, residual and unmixer: every term recomputed."""
    model = PhysVAE(small_config(ppc=ppc), 1, 50, 0.05)
    params = model.init(jax.random.key(0))
    x = pendulum_batch
    b = x.shape[0]
    keys = jax.random.split(jax.random.key(3), b)
    terms = jax.jit(model.sequence_losses)(params, x, jnp.ones(b, bool), keys, HP)

    # the same draws: sample, augmentation and noise keys are split from each sequence's key
    parts = jax.vmap(lambda k: jax.random.split(k, 3))(keys)
    post = model.encode(params, x)
    z, _ = model.latents(params, post, parts[:, 0])
    rec = model.decode(params, z, post.s0)
    assert rec.x_PA is not rec.x_P and rec.x_PB is not rec.x_P  # correction and residual present

    sse = _sq(rec.x_PAB, x)
    prior_mean, prior_std = model.physics.prior()
    kl = (_gaussian_kl(post.mean.phy, post.lnvar.phy, prior_mean, prior_std)
          + _gaussian_kl(post.mean.aux1, post.lnvar.aux1, 0.0, 1.0)
          + _gaussian_kl(post.mean.aux2, post.lnvar.aux2, 0.0, 1.0))
    r_da1 = _sq(post.unmixed, rec.x_P)
    if ppc == "all":
        r_ppc = (_sq(rec.x_PA, rec.x_P) + _sq(rec.x_PB, rec.x_P) + _sq(rec.x_PAB, rec.x_PA)
                 + _sq(rec.x_PAB, rec.x_PB)) / 4
    else:
        r_ppc = _sq(rec.x_PB, rec.x_P)
    omega_aug = jax.vmap(lambda k: jax.random.uniform(k, (1, 1), minval=0.392, maxval=3.53)[0])(parts[:, 1])
    x_aug = model.simulate(params, omega_aug, post.s0)
    r_da2 = np.sum((np.asarray(model.physics_mean(params, x_aug), np.float64) - np.asarray(omega_aug)) ** 2, -1)
    var = np.exp(-2.5)
    objective = sse + (0.7 + 0.3) * var * kl + 0.05 * r_da1 + 0.11 * r_da2 + 0.3 * r_ppc

    expected = {"sse": sse, "kl": kl, "r_da1": r_da1, "r_da2": r_da2, "r_ppc": r_ppc, "objective": objective,
                "neg_elbo": sse / (2 * var) + 0.5 * 50 * (np.log(2 * np.pi) - 2.5) + kl}
    for name, value in expected.items():
        np.testing.assert_allclose(terms[name], value, rtol=2e-5, atol=1e-6, err_msg=name)
    assert np.all(r_da1 > 0) and np.all(r_da2 > 0) and np.all(r_ppc > 0) and np.all(kl > 0)


def _hamiltonian_model():
    """The locomotion phys-VAE at toy size: a learned H (physics with parameters), a learned initial state, the
    unmixer and every regulariser."""
    return PhysVAE(small_config(physics="hamiltonian", dim_z_phy=2, dim_z_aux1=-1, dim_z_aux2=3, ppc="residual",
                                unmixer="residual"), 3, 12, 0.02)


def _gradient_of(model, term, params, x, keys):
    grads = jax.jit(jax.grad(lambda p: jnp.sum(model.sequence_losses(p, x, jnp.ones(x.shape[0], bool), keys,
                                                                     HP)[term])))(params)
    return {name: float(sum(jnp.sum(jnp.abs(g)) for g in jax.tree.leaves(tree)))
            for name, tree in [*grads["nets"].items(), ("physics", grads["physics"])]}


def test_stop_gradients_of_the_regularisers():
    """R_DA1 = ||u - sg(x_P)||^2 trains the unmixer (and the branches feeding it), never the physics, its encoder
    or the decoder; R_DA2 = ||mu_P(sg(x~)) - z~||^2 trains the physics encoder only, never the physics model or
    the initial-state head that made x~."""
    model = _hamiltonian_model()
    params = model.init(jax.random.key(0))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3, 12)) * 0.3, jnp.float32)
    keys = jax.random.split(jax.random.key(1), 4)
    da1 = _gradient_of(model, "r_da1", params, x, keys)
    for name in ("physics", "initial_state", "feat_phy", "mean_phy", "lnvar_phy", "residual"):
        assert da1[name] == 0.0, name
    for name in ("unmixer", "feat_aux2", "mean_aux2"):
        assert da1[name] > 0.0, name
    da2 = _gradient_of(model, "r_da2", params, x, keys)
    for name in ("physics", "initial_state", "unmixer", "residual", "feat_aux2", "lnvar_phy"):
        assert da2[name] == 0.0, name
    for name in ("feat_phy", "mean_phy"):
        assert da2[name] > 0.0, name


@pytest.mark.parametrize("solver, substeps", [("euler", 1), ("euler", 3), ("heun", 2)])
def test_fixed_step_solvers_hit_the_data_grid_exactly(solver, substeps):
    """dy/dt = -a y on T = 11 points of step 0.1: Euler gives y_i = (1 - a h)^(i k) y_0 with h = 0.1 / k, Heun
    (1 - a h + (a h)^2 / 2)^(i k) y_0, to float precision only if every data point lies on the solver grid."""
    a, t = 2.0, np.arange(11) * 0.1
    h = 0.1 / substeps
    factor = 1 - a * h if solver == "euler" else 1 - a * h + (a * h) ** 2 / 2
    ys = integrate(lambda tt, y, args: -args * y, jnp.ones(2), t, jnp.float32(a), SolverConfig(solver, substeps))
    expected = factor ** (np.arange(11) * substeps)
    np.testing.assert_allclose(np.asarray(ys)[:, 0], expected, rtol=2e-6)


def test_every_built_in_system_observes_what_it_should():
    state = jnp.arange(1.0, 7.0)  # (1, ..., 6)
    np.testing.assert_array_equal(Pendulum().observe({}, state[:2]), [1.0])  # theta, not its velocity
    ham = Hamiltonian(channels=3, hidden=(4,))
    np.testing.assert_array_equal(ham.observe(ham.init(jax.random.key(0)), state), [1.0, 2.0, 3.0])  # q, not p
    mapped = Hamiltonian(channels=3, hidden=(4,), observation_map=True)
    w, b = jnp.array([[0.0, 1, 0], [2, 0, 0], [0, 0, -1]]), jnp.array([0.5, 0, 1])
    np.testing.assert_allclose(mapped.observe({"W": w, "b": b}, state), [2.5, 2.0, -2.0])
    diffusion = Diffusion(num_points=3, dx=0.1, observation_map=True)
    np.testing.assert_allclose(diffusion.observe({"W": w, "b": b}, state[:3]), [2.5, 2.0, -2.0])
    np.testing.assert_array_equal(diffusion.observe(diffusion.init(jax.random.key(0)), state[:3]), [1, 2, 3])
    np.testing.assert_array_equal(Diffusion(num_points=3).observe({}, state[:3]), [1, 2, 3])  # default: none, as Config


def test_masked_rows_change_no_loss_metric_or_gradient(pendulum_batch):
    """A batch padded with garbage rows that are masked out gives the loss, metrics, gradients and step of the
    unpadded batch (per-sequence keys do not depend on the batch size: split(key, n)[i] is the same for any n)."""
    config = small_config()
    model = PhysVAE(config, 1, 50, 0.05)
    fns = make_functions(model, config)
    state = fns.init(jax.random.key(0), HP)
    x = pendulum_batch
    garbage = jnp.asarray(np.random.default_rng(5).normal(size=(3, 1, 50)) * 40.0, jnp.float32)
    padded = jnp.concatenate([x, garbage])
    mask = jnp.arange(padded.shape[0]) < x.shape[0]
    key = jax.random.key(7)

    loss_and_grad = jax.jit(jax.value_and_grad(model.loss, has_aux=True))
    (loss, metrics), grads = loss_and_grad(state.params, x, jnp.ones(x.shape[0], bool), key, HP)
    (loss_p, metrics_p), grads_p = loss_and_grad(state.params, padded, mask, key, HP)
    np.testing.assert_allclose(loss_p, loss, rtol=1e-5)
    for name in metrics:
        np.testing.assert_allclose(metrics_p[name], metrics[name], rtol=1e-5, err_msg=name)
    for g, g_p in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_p)):  # to float rounding of the sums
        np.testing.assert_allclose(g_p, g, rtol=1e-4, atol=1e-5 * float(np.max(np.abs(g))))
    assert jax.tree.structure(grads_p) == jax.tree.structure(grads)

    new, step_metrics = fns.train_step(state, (x, jnp.ones(x.shape[0], bool)), key, HP)
    new_p, step_metrics_p = fns.train_step(state, (padded, mask), key, HP)
    for name in step_metrics:
        np.testing.assert_allclose(step_metrics_p[name], step_metrics[name], rtol=1e-5, err_msg=name)
    assert_trees_close(new_p.params, new.params, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(step_metrics["loss"], loss, rtol=1e-5)  # the step's loss is the tested loss
