import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae import presets
from jaxphysvae.config import HParams
from jaxphysvae.errors import ConfigError
from jaxphysvae.model import PhysVAE
from jaxphysvae.physics import PhysicsModel
from tests.helpers import SMALL, assert_trees_close, small_config

HP = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-2.0)


def _data(c, t, b=4, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(b, c, t)), jnp.float32) * 0.3


@pytest.mark.parametrize("config, shape", [
    (small_config(), (1, 50)),
    (small_config(physics="diffusion", observation_map=True, unmixer="linear", dim_z_aux2=-1, substeps=2), (20, 50)),
    (small_config(physics="hamiltonian", dim_z_phy=2, dim_z_aux1=-1, dim_z_aux2=3, ppc="residual"), (3, 101)),
])
def test_shapes_of_every_output(config, shape):
    c, t = shape
    model = PhysVAE(config, c, t, 0.05)
    params = model.init(jax.random.key(0))
    x = _data(c, t)
    post = jax.jit(model.encode)(params, x)
    d = model.dims
    assert [a.shape for a in post.mean] == [(4, d.phy), (4, d.aux1), (4, d.aux2)]
    assert [a.shape for a in post.lnvar] == [(4, d.phy), (4, d.aux1), (4, d.aux2)]
    assert post.unmixed.shape == x.shape and post.s0.shape == (4, model.physics.state_size)
    z, kl = model.latents(params, post, jax.random.split(jax.random.key(1), 4))
    rec = jax.jit(model.decode)(params, z, post.s0)
    assert all(r.shape == x.shape for r in rec) and all(bool(jnp.all(jnp.isfinite(r))) for r in rec)
    assert kl.shape == (4,) and [a.shape for a in z] == [(4, d.phy), (4, d.aux1), (4, d.aux2)]
    loss, metrics = jax.jit(model.loss)(params, x, jnp.ones(4, bool), jax.random.key(2), HP)
    assert loss.shape == () and set(metrics) >= {"sse", "kl", "neg_elbo", "r_da1", "r_da2", "r_ppc", "loss"}


def test_physics_only_pendulum_decoder_is_the_pendulum():
    """x_P of the decoder equals an accurate solution of theta'' = -omega^2 sin theta at fine Euler steps."""
    from jaxphysvae.data import pendulum as gen
    model = PhysVAE(small_config(dim_z_aux1=-1, dim_z_aux2=-1, unmixer="none", solver="tsit5", rtol=1e-7,
                                 atol=1e-9), 1, 50, 0.05)
    params = model.init(jax.random.key(0))
    s0 = jnp.array([[1.0, 0.0], [-0.5, 0.0]])
    x_p = model.simulate(params, jnp.array([[2.0], [1.2]]), s0)
    exact = gen.simulate([1.0, -0.5], [2.0, 1.2], 0.0, 0.0, 5.0, np.arange(50) * 0.05)[..., 0]
    np.testing.assert_allclose(np.asarray(x_p[:, 0]), exact, atol=2e-5)


def test_solvers_agree_on_the_pendulum():
    outs = {}
    for solver, sub in [("euler", 20), ("heun", 2), ("tsit5", 1), ("dopri5", 1), ("semi_implicit_euler", 20)]:
        model = PhysVAE(small_config(dim_z_aux1=-1, dim_z_aux2=-1, unmixer="none", solver=solver, substeps=sub,
                                     rtol=1e-6, atol=1e-8), 1, 50, 0.05)
        outs[solver] = np.asarray(model.simulate(model.init(jax.random.key(0)), jnp.array([[2.5]]),
                                                 jnp.array([[1.2, 0.0]])))
    tolerance = {"euler": 0.06, "semi_implicit_euler": 0.06, "heun": 5e-3, "tsit5": 1e-3, "dopri5": 0.0}
    for solver, out in outs.items():
        np.testing.assert_allclose(out, outs["dopri5"], atol=tolerance[solver], err_msg=solver)


@pytest.mark.parametrize("solver", ["euler", "tsit5", "semi_implicit_euler"])
def test_batched_integration_equals_one_solve_per_sequence(solver):
    """integrate_batch stacks the batch into one system for fixed-step solvers and vmaps adaptive ones: either
    way every sequence's trajectory (and its gradient) is that of its own solve."""
    from jaxphysvae.physics import Hamiltonian, SeparableHamiltonian, SolverConfig, integrate, integrate_batch
    kind = SeparableHamiltonian if solver == "semi_implicit_euler" else Hamiltonian
    ham = kind(channels=2, dim_z=1, hidden=(16,))
    params = ham.init(jax.random.key(0))
    s0 = jax.random.normal(jax.random.key(1), (5, 4)) * 0.5
    z = jax.random.normal(jax.random.key(2), (5, 1))
    t, cfg = np.arange(30, dtype=np.float32) * 0.1, SolverConfig(solver, substeps=2)
    if solver == "semi_implicit_euler":
        field = (lambda tt, y, prm, zz: ham.separable_fields(prm, zz)[0](tt, y),
                 lambda tt, y, prm, zz: ham.separable_fields(prm, zz)[1](tt, y))
        split = lambda s: tuple(jnp.split(s, 2, axis=-1))
        one = lambda prm, s, zz: jnp.concatenate(integrate(
            tuple(lambda tt, y, a, f=f: f(tt, y, *a) for f in field), split(s), t, (prm, zz), cfg), -1)
        many = lambda prm, s: jnp.concatenate(integrate_batch(field, split(s), t, prm, z, cfg), -1)
    else:
        field = lambda tt, y, prm, zz: ham.vector_field(prm, tt, y, zz)
        one = lambda prm, s, zz: integrate(lambda tt, y, a: field(tt, y, *a), s, t, (prm, zz), cfg)
        many = lambda prm, s: integrate_batch(field, s, t, prm, z, cfg)
    separate = jax.vmap(one, in_axes=(None, 0, 0))(params, s0, z)
    np.testing.assert_allclose(np.asarray(many(params, s0)), np.asarray(separate), rtol=1e-5, atol=1e-6)
    loss = lambda f: lambda prm: jnp.sum(f(prm) ** 2)
    g_many = jax.grad(loss(lambda prm: many(prm, s0)))(params)
    g_sep = jax.grad(loss(lambda prm: jax.vmap(one, in_axes=(None, 0, 0))(prm, s0, z)))(params)
    assert_trees_close(g_many, g_sep, rtol=1e-4, atol=1e-5)


def test_symplectic_solver_keeps_the_pendulum_energy_bounded():
    model = PhysVAE(small_config(dim_z_aux1=-1, dim_z_aux2=-1, unmixer="none", solver="semi_implicit_euler"),
                    1, 400, 0.05)
    euler = PhysVAE(small_config(dim_z_aux1=-1, dim_z_aux2=-1, unmixer="none"), 1, 400, 0.05)
    z, s0 = jnp.array([[3.0]]), jnp.array([[1.0, 0.0]])
    amp_symplectic = float(jnp.max(jnp.abs(model.simulate({"nets": {}, "physics": {}}, z, s0))))
    amp_euler = float(jnp.max(jnp.abs(euler.simulate({"nets": {}, "physics": {}}, z, s0))))
    assert amp_symplectic < 1.05 and amp_euler > 1.5  # explicit Euler pumps energy in, the symplectic one does not


def test_float64_gradient_matches_finite_differences():
    config = small_config(physics="hamiltonian", dim_z_phy=1, dim_z_aux1=-1, dim_z_aux2=2, ppc="residual",
                          activation="tanh", unmixer="residual")
    with jax.enable_x64(True):
        model = PhysVAE(config, 2, 12, 0.05)
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), model.init(jax.random.key(0)))
        x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 2, 12)) * 0.3)
        # R_DA1 and R_DA2 stop gradients on purpose (their targets are constants), so finite differences of the
        # whole objective see more than its gradient does: check the squared error, KL and R_ppc terms.
        hp = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), HP._replace(beta=0.0, gamma=0.0))
        f = jax.jit(lambda p: model.loss(p, x, jnp.ones(3, bool), jax.random.key(3), hp)[0])
        grad = jax.grad(f)(params)
        for seed in range(3):
            leaves, tree = jax.tree.flatten(params)
            keys = jax.random.split(jax.random.key(seed), len(leaves))
            v = jax.tree.unflatten(tree, [jax.random.normal(k, l.shape, jnp.float64) for k, l in zip(keys, leaves)])
            eps = 1e-6
            fd = (f(jax.tree.map(lambda p, d: p + eps * d, params, v))
                  - f(jax.tree.map(lambda p, d: p - eps * d, params, v))) / (2 * eps)
            analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(v)))
            assert float(analytic) == pytest.approx(float(fd), rel=1e-5)


@pytest.mark.parametrize("config", [
    small_config(),
    small_config(physics="hamiltonian", dim_z_phy=2, dim_z_aux1=-1, dim_z_aux2=3, ppc="residual"),
], ids=["pendulum", "hamiltonian"])
def test_reconstruction_sends_gradient_to_the_physics_encoder(config):
    """Unlike the published NF code, the squared error alone reaches z_P's encoder (and through it the unmixer)."""
    c, t = (1, 50) if config.model.physics == "pendulum" else (3, 30)
    model = PhysVAE(config, c, t, 0.05)
    params = model.init(jax.random.key(0))
    x = _data(c, t)
    hp = HParams.create(kl_weight=0.0, x_lnvar=0.0)  # reconstruction only: no regulariser, no KL
    grads = jax.jit(jax.grad(lambda p: model.loss(p, x, jnp.ones(4, bool), jax.random.key(1), hp)[0]))(params)
    for name in ("feat_phy", "mean_phy", "lnvar_phy", "unmixer"):
        norm = sum(float(jnp.sum(jnp.abs(g))) for g in jax.tree.leaves(grads["nets"][name]))
        assert norm > 0, name


def test_learned_observation_variance_reaches_its_maximum_likelihood_value():
    model = PhysVAE(small_config(learn_x_lnvar=True), 1, 50, 0.05)
    params = model.init(jax.random.key(0), HParams.create(x_lnvar=-1.0))
    x = _data(1, 50)
    hp = HParams.create(x_lnvar=-1.0)
    f = lambda lnvar: model.loss({**params, "x_lnvar": lnvar}, x, jnp.ones(4, bool), jax.random.key(1), hp)
    _, metrics = jax.jit(f)(params["x_lnvar"])
    mle = float(jnp.log(metrics["sse"] / 50))
    grad = jax.jit(jax.grad(lambda v: f(v)[0]))
    assert float(grad(jnp.float32(mle))) == pytest.approx(0.0, abs=1e-3)
    assert float(grad(jnp.float32(mle - 1))) < 0


class Spring(PhysicsModel):
    """A user's own physics, defined outside the library."""

    def __init__(self):
        super().__init__(dim_z=1, state_size=2, z_range=((0.5,), (3.0,)), positive=True, param_names=("k",),
                         correction_index=(1,))

    def vector_field(self, params, t, state, z):
        return jnp.stack([state[1], -z[0] * state[0]])

    def initial_state(self, x):
        return jnp.stack([x[0, 0], 0.0])

    def observe(self, params, state):
        return state[:1]


def test_an_incomplete_physics_model_is_refused_when_it_is_made():
    class NoObservation(PhysicsModel):
        def __init__(self):
            super().__init__(dim_z=1, state_size=2)

        def vector_field(self, params, t, state, z):
            return state

        def initial_state(self, x):
            return jnp.zeros(2)

    class NoInitialState(Spring):
        initial_state = PhysicsModel.initial_state

    with pytest.raises(TypeError, match="observe"):
        NoObservation()
    with pytest.raises(ConfigError, match="NoInitialState must implement initial_state"):
        NoInitialState()
    with pytest.raises(ConfigError, match="Spring is not separable"):
        PhysVAE(small_config(solver="semi_implicit_euler", dim_z_aux1=-1), 1, 40, 0.05, physics=Spring())


def test_user_physics_plugs_in_without_editing_the_library():
    model = PhysVAE(small_config(solver="tsit5"), 1, 40, 0.05, physics=Spring())
    params = model.init(jax.random.key(0))
    x_p = model.simulate(params, jnp.array([[2.0]]), jnp.array([[1.0, 0.0]]))
    np.testing.assert_allclose(np.asarray(x_p[0, 0]), np.cos(np.sqrt(2.0) * np.arange(40) * 0.05), atol=1e-3)
    loss, _ = model.loss(params, _data(1, 40), jnp.ones(4, bool), jax.random.key(0), HP)
    assert np.isfinite(float(loss))


def test_a_windowed_initial_state_head_reads_the_first_samples_only():
    """init_window=10: s0 is the head's MLP (elu between its layers) of the first 10 samples of every channel."""
    config = small_config(physics="hamiltonian", dim_z_phy=2, dim_z_aux1=-1, dim_z_aux2=3, ppc="residual",
                          init_window=10)
    model = PhysVAE(config, 3, 30, 0.05)
    params = model.init(jax.random.key(0))
    x = _data(3, 30)
    head = params["nets"]["initial_state"]["params"]
    assert head["Dense_0"]["kernel"].shape[0] == 3 * 10
    h = np.asarray(x)[:, :, :10].reshape(4, -1) @ np.asarray(head["Dense_0"]["kernel"]) + np.asarray(
        head["Dense_0"]["bias"])
    h = np.where(h > 0, h, np.expm1(np.minimum(h, 0)))
    expected = h @ np.asarray(head["Dense_1"]["kernel"]) + np.asarray(head["Dense_1"]["bias"])
    np.testing.assert_allclose(model.encode(params, x).s0, expected, rtol=1e-5, atol=1e-6)
    later_changed = x.at[:, :, 10:].set(7.0)
    np.testing.assert_array_equal(model.encode(params, later_changed).s0, model.encode(params, x).s0)


class FixedSpring(PhysicsModel):
    """ds/dt = (s_1, -4 s_0), observed s_0, with the initial state from an encoder head: x_P is linear in s0."""

    def __init__(self):
        super().__init__(dim_z=0, state_size=2, learned_initial_state=True)

    def vector_field(self, params, t, state, z):
        return jnp.stack([state[1], -4.0 * state[0]])

    def observe(self, params, state):
        return state[:1]


@pytest.mark.parametrize("least_squares", [False, True], ids=["encoder_z_A2", "least_squares_z_A2"])
def test_a_gauss_newton_step_on_the_initial_state_reaches_the_least_squares_state_of_a_linear_decoder(least_squares):
    """With physics linear in s0 and a linear residual, x_PAB = c + A s0 + W z_A2: one (lightly damped) step from
    the head's s0 lands on the least-squares s0, jointly with z_A2 where z_A2 is itself the least-squares code."""
    config = small_config(dim_z_phy=0, dim_z_aux1=-1, dim_z_aux2=2, unmixer="none", residual_hidden=(),
                          ppc="residual", aux2_least_squares=least_squares)
    x = _data(1, 40, b=5)
    plain = PhysVAE(config, 1, 40, 0.05, physics=FixedSpring())
    refined = PhysVAE(config.replace(init_refine_steps=1), 1, 40, 0.05, physics=FixedSpring())
    params = plain.init(jax.random.key(0))
    head = plain.encode(params, x)
    z, _ = plain.latents(params, head, None)
    decode = lambda s0, aux2: np.asarray(plain.decode(params, z._replace(aux2=aux2), s0).x_PAB).reshape(5, -1)
    zero_s, zero_a = jnp.zeros((5, 2)), jnp.zeros((5, 2))
    c = decode(zero_s, zero_a)
    a = np.stack([decode(zero_s + e, zero_a) - c for e in np.eye(2)], -1)  # (B, C T, 2)
    w = np.stack([decode(zero_s, zero_a + e) - c for e in np.eye(2)], -1)
    target = np.asarray(x).reshape(5, -1) - c
    expected = []
    for i in range(5):
        if least_squares:
            expected.append(np.linalg.lstsq(np.concatenate([a[i], w[i]], 1), target[i], rcond=None)[0][:2])
        else:
            expected.append(np.linalg.lstsq(a[i], target[i] - w[i] @ np.asarray(z.aux2[i]), rcond=None)[0])
    expected = np.stack(expected)
    got = np.asarray(refined.encode(params, x).s0)
    start = np.abs(np.asarray(head.s0) - expected).max()
    assert start > 0.1  # the head's state is far from the optimum
    np.testing.assert_allclose(got, expected, atol=1e-2 * start)


def test_training_differentiates_through_the_initial_state_steps():
    """init_refine_steps=1 on the learned Hamiltonian: the step lowers (or keeps) every sequence's error at the
    posterior mean, and the loss and its gradient are finite, the initial-state head's nonzero."""
    config = small_config(physics="hamiltonian", dim_z_phy=2, dim_z_aux1=-1, dim_z_aux2=3, ppc="residual",
                          residual_hidden=(), aux2_least_squares=True)
    x = _data(3, 30)
    models = [PhysVAE(config.replace(init_refine_steps=k), 3, 30, 0.05) for k in (0, 1)]
    params = models[0].init(jax.random.key(0))

    @jax.jit
    def errors(params):  # (2, B) each model's squared error per sequence at the posterior mean
        def one(model):
            post = model.encode(params, x)
            z, _ = model.latents(params, post, None)
            return jnp.sum((model.decode(params, z, post.s0).x_PAB - x) ** 2, axis=(1, 2))
        return jnp.stack([one(m) for m in models])

    e0, e1 = np.asarray(errors(params))
    assert np.all(e1 <= e0) and e1.sum() < 0.9 * e0.sum()
    loss, grads = jax.jit(jax.value_and_grad(
        lambda p: models[1].loss(p, x, jnp.ones(4, bool), jax.random.key(1), HP)[0]))(params)
    assert np.isfinite(float(loss)) and all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads["nets"]["initial_state"]["params"]["Dense_0"]["kernel"]).sum()) > 0


@pytest.mark.parametrize("changes, shape, match", [
    (dict(dataset="galaxy"), (1, 50), "unknown dataset 'galaxy'"),
    (dict(physics="lorenz"), (1, 50), "unknown physics 'lorenz'"),
    (dict(solver="rk4"), (1, 50), "unknown solver 'rk4'"),
    (dict(unmixer="pca"), (1, 50), "unknown unmixer 'pca'"),
    (dict(activation="swish9"), (1, 50), "unknown activation 'swish9'"),
    (dict(dim_z_aux1=-2), (1, 50), "dim_z_aux1 must be -1"),
    (dict(dim_z_aux2=-5), (1, 50), "dim_z_aux2 must be -1"),
    (dict(dim_z_phy=-1), (1, 50), "dim_z_phy must be 0 or positive"),
    (dict(batch_size=0), (1, 50), "batch_size must be a positive integer"),
    (dict(substeps=0), (1, 50), "substeps must be a positive integer"),
    (dict(use_physics=False), (1, 50), "an unmixer needs physics"),
    (dict(solver="semi_implicit_euler"), (1, 50), "symplectic .* separable field"),
    (dict(dim_z_aux1=-1, dim_z_aux2=-1, unmixer="none", physics="diffusion", solver="semi_implicit_euler"), (20, 50),
     "symplectic solver needs separable physics"),
    (dict(dim_z_phy=3), (1, 50), "physics 'pendulum' has 1 parameter"),
    (dict(), (3, 50), "observes 1 channel.* data have 3"),
    (dict(unmixer="linear", dim_z_aux1=-1, dim_z_aux2=-1), (1, 50), "linear unmixer needs"),
    (dict(time_warp=0.45), (1, 50), r"time_warp must lie in \[0, 0.4\)"),
    (dict(time_warp=0.1, time_warp_anchor=0.05), (1, 50), r"time_warp must lie in \[0, 0.05\)"),
    (dict(time_warp_anchor=1.0), (1, 50), r"time_warp_anchor must lie in \(0, 1\)"),
    (dict(time_warp=0.1, dim_z_aux2=0), (1, 50), "needs dim_z_aux2 >= 1"),
    (dict(init_window=0), (1, 50), "init_window must be a positive integer, got 0"),
    (dict(init_refine_steps=-1), (1, 50), "init_refine_steps must be an integer >= 0, got -1"),
    (dict(physics="hamiltonian", dim_z_phy=2, dim_z_aux1=-1, dim_z_aux2=3, ppc="residual", init_window=51), (3, 50),
     r"init_window=51: the initial-state head cannot read more samples than a sequence has \(50\)"),
])
def test_bad_configuration_is_a_clear_error_before_compilation(changes, shape, match):
    with pytest.raises(ConfigError, match=match):
        PhysVAE(small_config(**changes), *shape, 0.05)


class Broken(Spring):
    def initial_state(self, x):
        return x.reshape(7, -1)[:, 0]


def test_physics_that_does_not_fit_the_data_is_named():
    with pytest.raises(ConfigError, match="physics Broken does not fit data of shape"):
        PhysVAE(small_config(), 1, 50, 0.05, physics=Broken())


def test_bad_hyperparameters_and_overrides():
    from jaxphysvae.config import apply_overrides
    with pytest.raises(ConfigError, match="unknown hyper-parameter"):
        HParams.create(alpah=1.0)
    with pytest.raises(ConfigError, match="learning rate must be positive"):
        HParams.create(lr=0.0)
    with pytest.raises(ConfigError, match="alpha must be >= 0"):
        HParams.create(alpha=-1.0)
    with pytest.raises(ConfigError, match="must be finite"):
        HParams.create(beta=float("nan"))
    with pytest.raises(ConfigError, match="unknown preset 'pendulum-vae'"):
        presets.get("pendulum-vae")
    config, hp = presets.get("pendulum-phys-vae")
    with pytest.raises(ConfigError, match="unknown key 'dimz'"):
        apply_overrides(config, hp, ["dimz=3"])
    with pytest.raises(ConfigError, match="batch_size: expected an integer"):
        apply_overrides(config, hp, ["batch_size=1.5"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(config, hp, ["alpha"])
    with pytest.raises(ConfigError, match="feat_hidden: expected a list of integers"):
        apply_overrides(config, hp, ["feat_hidden=[32.5]"])
    new, hp2 = apply_overrides(config, hp, ["alpha=0.5", "feat_hidden=[32,32]", "solver=heun", "learn_x_lnvar=true"])
    assert hp2["alpha"] == 0.5 and new.model.feat_hidden == (32, 32) and new.model.solver.name == "heun"
    assert new.model.learn_x_lnvar
    # optional fields follow their declared type, whatever the preset's current value
    locomotion, _ = presets.get("locomotion-phys-vae")
    assert locomotion.optimisation.grad_clip_norm == 50.0
    assert apply_overrides(locomotion, {}, ["grad_clip_norm=null"])[0].optimisation.grad_clip_norm is None
    assert apply_overrides(config, {}, ["grad_clip_norm=20"])[0].optimisation.grad_clip_norm == 20.0
    assert apply_overrides(config, {}, ["n_train=64"])[0].data.n_train == 64
    # `noise` is both the noise model (a name, configuration) and its level (a number, hyper-parameter)
    noisy, hp3 = apply_overrides(config, {"noise": 0.0}, ["noise=feature", "noise=0.1"])
    assert noisy.model.noise == "feature" and hp3["noise"] == 0.1 and config.model.noise == "none"
    with pytest.raises(ConfigError, match="noise"):
        apply_overrides(config, {}, ["noise=featur"])


def test_every_preset_builds():
    for name in presets.PRESETS:
        config, hp = presets.get(name)
        c, t = {"pendulum": (1, 50), "advdif": (20, 50), "locomotion": (3, 101)}[config.data.dataset]
        config = config.replace(**SMALL)
        PhysVAE(config, c, t, 0.05)
        HParams.create(**hp)


def test_the_tuned_advection_diffusion_phys_vae_is_its_base_at_lr_3e4_with_the_identity_observation():
    config, hp = presets.get("advdif-phys-vae-tuned")
    base_config, base_hp = presets.get("advdif-phys-vae")
    assert not config.model.observation_map and base_config.model.observation_map  # the reference learns W y + b
    assert config.replace(observation_map=True) == base_config
    assert hp == {**base_hp, "lr": 3e-4} and "lr" not in base_hp


@pytest.mark.parametrize("base", ["locomotion-phys-vae", "locomotion-nf", "locomotion-attnf", "locomotion-attnf-seq"])
def test_a_tuned_locomotion_preset_is_its_base_with_lr_3e4_and_batches_of_50(base):
    config, hp = presets.get(f"{base}-tuned")
    base_config, base_hp = presets.get(base)
    assert config.optimisation.batch_size == 50 and config.schedule.epochs == 2000 and hp["lr"] == 3e-4
    assert config.replace(batch_size=base_config.optimisation.batch_size) == base_config
    assert {k: v for k, v in hp.items() if k != "lr"} == base_hp and "lr" not in base_hp  # published: 1e-3


@pytest.mark.parametrize("base", ["advdif-nf", "advdif-attnf-seq"])
def test_a_tuned_advdif_preset_is_its_base_with_lr_3e4_norm_clip_no_physics_flow_logit_z_phy_and_identity_map(base):
    config, hp = presets.get(f"{base}-tuned")
    base_config, base_hp = presets.get(base)
    assert ((config.optimisation.grad_clip_norm, config.model.flow_phy, config.model.z_phy_space,
             config.model.observation_map) == (50.0, 0, "logit", False))
    assert base_config.optimisation.grad_clip_norm is None and base_config.model.flow_phy > 0
    assert config.replace(grad_clip_norm=None, flow_phy=base_config.model.flow_phy, z_phy_space="physical",
                          observation_map=True) == base_config
    assert hp["lr"] == 3e-4 and {k: v for k, v in hp.items() if k != "lr"} == base_hp and "lr" not in base_hp
