"""The physics-integrated VAE (phys-VAE): its parts composed, as pure functions.

Shapes: B sequences per batch, C channels, T time points, S state size; latent widths d_P, d_A1, d_A2 (a removed
latent has width 0). See METHOD.md sections 1-3 for the equations. The parts, one module each:

  Encoder (jaxphysvae.encoder)            x -> Posterior: branches, unmixer, initial-state head
  LatentPosterior (jaxphysvae.posterior)  Posterior -> latents and KL: samples, planar flows, batch attention
  GreyBoxDecoder (jaxphysvae.decoder)     latents, s0 -> four reconstructions: ODE solve, correction, residual
  objective (jaxphysvae.objective)        the per-sequence objective and its batch mean

Randomness is drawn per sequence from per-sequence keys (B,), so no sequence's sample or noise depends on its batch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from jaxphysvae import objective
from jaxphysvae.config import Config, HParams, ModelConfig
from jaxphysvae.decoder import GreyBoxDecoder, Reconstructions
from jaxphysvae.encoder import Encoder, Noise, Posterior
from jaxphysvae.errors import ConfigError
from jaxphysvae.flows import flow_forward, stack_params
from jaxphysvae.gauss_newton import damped_step
from jaxphysvae.latents import GROUPS, Latents, Layout, applier
from jaxphysvae.objective import masked_mean
from jaxphysvae.physics import NoPhysics, PhysicsModel, SeparablePhysicsModel, make_physics
from jaxphysvae.physics.user import is_import_path
from jaxphysvae.physics.integrate import SYMPLECTIC
from jaxphysvae.posterior import LatentPosterior


# the ridge of PhysVAE.fit_aux2_mean, a fraction of the mean diagonal of W W^T
AUX2_RIDGE = 1e-5
INIT_REFINE_FD_STEP = 1e-3  # forward-difference step of refine_initial_state's Jacobian, in the state's units
INIT_REFINE_DAMPING = 1e-3  # its Levenberg-Marquardt mu, relative to the diagonal of J^T J

__all__ = ["GROUPS", "Latents", "Noise", "PhysVAE", "Posterior", "Reconstructions", "masked_mean"]


class PhysVAE:
    """A phys-VAE for sequences of C channels and T time points with step dt.

    All methods are pure functions of their arguments (the instance holds only static structure), so they can be
    jitted, vmapped and differentiated. Parameters: {"nets": {name: flax params} of every part's networks,
    "physics": the physics model's, and "x_lnvar" when the noise variance is learned}.
    """

    def __init__(self, config: ModelConfig | Config, num_channels: int, num_steps: int, dt: float,
                 physics: PhysicsModel | None = None, data_stats: dict | None = None):
        """config: what the model computes (a ModelConfig; of a whole Config its `model` part is taken, the rest
        being data and training choices); physics: a PhysicsModel of your own (default: the one config.physics
        names); data_stats: per-channel 'std', 'min' and 'max' (C,) of the training data, used by input noise."""
        config = config.model if isinstance(config, Config) else config
        if not isinstance(config, ModelConfig):
            raise ConfigError(f"PhysVAE needs a ModelConfig (or a Config), got {type(config).__name__}")
        self.config = config
        self.data_stats = None if data_stats is None else {k: jnp.asarray(v, jnp.float32)
                                                           for k, v in data_stats.items()}
        self.num_channels, self.num_steps, self.dt = num_channels, num_steps, float(dt)
        self.t = (np.arange(num_steps) * self.dt).astype(np.float32)
        # the program cache (jaxphysvae.programs) vouches only for the package's own code
        self.physics_from_config = physics is None and not is_import_path(config.physics)
        base = make_physics(config, num_channels) if physics is None else physics
        self.physics = base if config.use_physics else NoPhysics(base)
        self.solver = config.solver
        self.layout = Layout.of(config, self.physics)
        self.dims, self.flow_steps, self.attention = self.layout.dims, self.layout.flow_steps, self.layout.attention
        self.has_correction, self.has_residual = self.layout.has_correction, self.layout.has_residual
        self._check()
        self.encoder = Encoder(config, self.layout, self.physics, num_channels, num_steps, self.data_stats)
        self.posterior = LatentPosterior(config, self.layout, self.physics)
        self.decoder = GreyBoxDecoder(config, self.layout, self.physics, self.solver, self.t, num_channels)
        self.nets = {**self.encoder.networks, **self.posterior.networks, **self.decoder.networks}
        self._apply = applier(self.nets)

    def _check(self):
        c, p = self.config, self.physics
        if self.solver.name == SYMPLECTIC:  # the one place of this rule: a separable model, nothing added to its field
            if not (isinstance(p, SeparablePhysicsModel) and c.use_physics):
                raise ConfigError(f"the symplectic solver needs separable physics (a SeparablePhysicsModel); "
                                  f"{type(p).__name__ + ' is not separable' if c.use_physics else 'physics is off'}")
            if self.has_correction:
                raise ConfigError("the symplectic semi_implicit_euler solver needs a separable field: remove the "
                                  "in-ODE correction (dim_z_aux1=-1) or choose another solver")
        if c.use_physics and c.dim_z_phy != p.dim_z:
            raise ConfigError(f"physics {c.physics!r} has {p.dim_z} parameter(s): set dim_z_phy={p.dim_z}, "
                              f"got {c.dim_z_phy}")
        if c.z_phy_space == "logit" and self.dims.phy and p.z_range is None:
            raise ConfigError(f"z_phy_space='logit' maps z_P into its physical range, but {type(p).__name__} has "
                              f"none (z_range): use z_phy_space='physical'")
        if c.unmixer == "linear" and self.dims.aux1 + self.dims.aux2 == 0:
            raise ConfigError("the linear unmixer needs z_A1 or z_A2 (it maps their means to a correction)")
        x = jax.ShapeDtypeStruct((self.num_channels, self.num_steps), jnp.float32)
        try:
            params = jax.eval_shape(p.init, jax.random.key(0))
            s0 = (jax.ShapeDtypeStruct((p.state_size,), jnp.float32) if p.learned_initial_state
                  else jax.eval_shape(p.initial_state, x))
            obs = jax.eval_shape(p.observe, params, s0)
            ds = jax.eval_shape(p.vector_field, params, 0.0, s0, jnp.zeros(p.dim_z))
        except ConfigError:
            raise
        except Exception as e:
            raise ConfigError(f"physics {type(p).__name__} does not fit data of shape (C={self.num_channels}, "
                              f"T={self.num_steps}): {type(e).__name__}: {e}") from None
        if s0.shape != (p.state_size,) or ds.shape != (p.state_size,):
            raise ConfigError(f"physics {type(p).__name__}: initial state {s0.shape} and field {ds.shape} must "
                              f"both have shape ({p.state_size},)")
        if obs.shape != (self.num_channels,):
            raise ConfigError(f"physics {type(p).__name__} observes {obs.shape[0] if obs.ndim else 0} channel(s) "
                              f"but the data have {self.num_channels}")

    def identity(self) -> str | None:
        """What fixes this model's traced programs besides the package's source (jaxphysvae.programs): the
        model configuration, the data's shape and step, and the data statistics; None for a user's physics (passed,
        or named by an import path), whose code the program cache cannot vouch for."""
        if not self.physics_from_config:
            return None
        stats = None if self.data_stats is None else {k: np.asarray(v).tobytes().hex()
                                                      for k, v in sorted(self.data_stats.items())}
        return repr((self.config, self.num_channels, self.num_steps, self.dt, stats))

    def init(self, key: jax.Array, hparams: HParams | None = None) -> dict:
        """Initial parameters: {'nets': {name: flax params}, 'physics': ..., and 'x_lnvar' when learned}."""
        keys = jax.random.split(key, len(self.nets) + 1)
        shape = lambda width: (1,) + (tuple(width) if isinstance(width, tuple) else (width,))
        nets = {name: net.init(k, jnp.zeros(shape(width)))
                for k, (name, (net, width)) in zip(keys[1:], sorted(self.nets.items()))}
        params = {"nets": nets, "physics": self.physics.init(keys[0])}
        if self.config.learn_x_lnvar:
            start = HParams().x_lnvar if hparams is None else hparams.x_lnvar
            params["x_lnvar"] = jnp.asarray(start, jnp.float32)
        return params

    # --- the parts ------------------------------------------------------------------------------------------------
    def encode(self, params, x: Float[Array, "B C T"], noise: Noise | None = None) -> Posterior:
        """The posterior of a batch (see Encoder), z_A2's mean fitted by least squares where
        config.aux2_least_squares (`fit_aux2_mean`), then config.init_refine_steps Gauss-Newton steps on the initial
        state (`refine_initial_state`)."""
        post = self.encoder(params, x, noise)
        if not (self.config.aux2_least_squares or self.config.init_refine_steps):
            return post
        seen = self.encoder.seen(x, noise)
        if self.config.aux2_least_squares:
            post = self.fit_aux2_mean(params, seen, post)
        for _ in range(self.config.init_refine_steps):
            post = self.refine_initial_state(params, seen, post)
        return post

    def refine_initial_state(self, params, x: Float[Array, "B C T"], post: Posterior) -> Posterior:
        """`post` after one damped Gauss-Newton step on each sequence's initial state s0 (config.init_refine_steps).

        The step lowers the squared error of x_PAB at the posterior mean (with z_A2's least-squares code re-fitted to
        every s0 where config.aux2_least_squares): delta = (J^T J + mu diag(J^T J) + floor I)^-1 J^T r, r = x - x_PAB,
        mu = INIT_REFINE_DAMPING (jaxphysvae.gauss_newton.damped_step), and J (C T, S) the Jacobian of x_PAB in s0
        by forward differences of INIT_REFINE_FD_STEP (state units). The step costs S + 2 reconstructions (the S + 1
        of the Jacobian batched, and the trial's), each one decoder pass, or two with the least-squares z_A2;
        training differentiates through them by the solver's reverse mode (no forward mode needed). A sequence keeps
        its s0 (and z_A2) where the step does not lower its error. x: (B, C, T) what the encoder read."""
        b, n = x.shape[0], self.physics.state_size

        def reconstruct(s0):  # (B, S) -> the (B, C T) reconstruction and the posterior with that initial state
            trial = post._replace(s0=s0)
            if self.config.aux2_least_squares:
                trial = self.fit_aux2_mean(params, x, trial)
            z, _ = self.posterior(params, trial, None)
            return self.decoder(params, z, s0).x_PAB.reshape(b, -1), trial

        shifted = post.s0[None] + INIT_REFINE_FD_STEP * jnp.eye(n)[:, None, :]  # (S, B, S)
        x_hat = jax.vmap(lambda s0: reconstruct(s0)[0])(jnp.concatenate([post.s0[None], shifted]))
        jac = jnp.moveaxis((x_hat[1:] - x_hat[0]) / INIT_REFINE_FD_STEP, 0, -1)  # (B, C T, S)
        r = x.reshape(b, -1) - x_hat[0]
        step = jax.vmap(damped_step, (0, 0, None))(jac, r, INIT_REFINE_DAMPING)
        x_new, moved = reconstruct(post.s0 + step)
        better = jnp.sum((x.reshape(b, -1) - x_new) ** 2, -1) < jnp.sum(r ** 2, -1)  # False for a NaN
        return jax.tree.map(lambda new, old: jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
                            moved, post)

    def fit_aux2_mean(self, params, x: Float[Array, "B C T"], post: Posterior) -> Posterior:
        """`post` with z_A2's mean replaced by the code that best reconstructs x given the rest of the posterior.

        The residual network is linear (config.aux2_least_squares needs residual_hidden=[]), so x_PAB is
        x_PAB(z_A2 = 0) + W z_A2, W (d_A2, C T) read off the network by its responses to the unit codes, with z_P and
        z_A1 at their posterior means and s0 the inferred initial state. The mean is the ridge least-squares solution
        (W W^T + lambda I)^-1 W (x - x_PAB(z_A2 = 0)), lambda = 1e-5 of W W^T's mean diagonal: the exact posterior mean
        for z_A2's N(0, I) prior and an observation noise of variance lambda, and a guard against directions W has
        dropped. Differentiable in every parameter; x: (B, C, T) what the encoder read (after an input noise)."""
        z, _ = self.posterior(params, post, None)
        b, d = x.shape[0], self.dims
        base = self.decoder(params, z._replace(aux2=jnp.zeros_like(z.aux2)), post.s0).x_PAB.reshape(b, -1)
        width = d.phy + d.aux1 + d.aux2
        units = jnp.concatenate([jnp.zeros((1, width)), jnp.eye(width)[d.phy + d.aux1:]])
        response = self._apply(params, "residual", units)
        w = response[1:] - response[:1]  # (d_A2, C T)
        gram = w @ w.T
        ridge = AUX2_RIDGE * jnp.trace(gram) / d.aux2
        mean = jnp.linalg.solve(gram + ridge * jnp.eye(d.aux2), w @ (x.reshape(b, -1) - base).T).T
        return post._replace(mean=post.mean._replace(aux2=mean))

    def physics_mean(self, params, u: Float[Array, "B C T"]) -> Float[Array, "B dP"]:
        """The physics encoder's base mean of z_P from a (cleaned) input u, pushed through z_P's flow where
        config.da2_flowed, in physical units (mapped into the range for a model whose z_P lives in logit space)."""
        mean, _, flow = self.encoder.branch(params, "phy", u, None)
        if self.config.da2_flowed and self.flow_steps.phy:
            params_flow = stack_params(flow, self.flow_steps.phy, self.dims.phy)
            mean, _ = flow_forward(mean, params_flow, self.config.flow_margin)
        return self.physics.to_range(mean) if self.config.z_phy_space == "logit" else mean

    def latents(self, params, posterior: Posterior, keys: jax.Array | None, mask: jax.Array | None = None):
        """(z, kl): latents (samples with per-sequence keys (B,), or the posterior mean for None) and the KL per
        sequence (see LatentPosterior)."""
        return self.posterior(params, posterior, keys, mask)

    def simulate(self, params, z_phy: Float[Array, "B dP"], s0: Float[Array, "B S"]) -> Float[Array, "B C T"]:
        """Physics-only signals for z_P from initial states s0."""
        return self.decoder.simulate(params, z_phy, s0)

    def decode(self, params, z: Latents, s0: Float[Array, "B S"], forward_mode: bool = False) -> Reconstructions:
        """The four reconstructions of latents z from initial states s0 (see GreyBoxDecoder). forward_mode: make the
        ODE solve differentiable by jax.jvp / jax.jacfwd (e.g. the Jacobian of a reconstruction in the code) instead
        of by jax.grad."""
        return self.decoder(params, z, s0, forward_mode)

    # --- objective ------------------------------------------------------------------------------------------------
    def x_lnvar(self, params, hparams: HParams) -> jax.Array:
        """The log observation-noise variance in use: learned, or hparams.x_lnvar."""
        return params["x_lnvar"] if self.config.learn_x_lnvar else hparams.x_lnvar

    def sequence_losses(self, params, x: Float[Array, "B C T"], mask: Bool[Array, "B"], keys: jax.Array,
                        hparams: HParams) -> dict[str, Float[Array, "B"]]:
        """The objective and its parts per sequence (jaxphysvae.objective.sequence_losses)."""
        return objective.sequence_losses(self, params, x, mask, keys, hparams)

    def batch_loss(self, params, x: Float[Array, "B C T"], mask: Bool[Array, "B"], keys: jax.Array,
                   hparams: HParams):
        """The training objective on a batch, the one that every training step differentiates: (loss, metrics),
        the masked mean of `sequence_losses` and of each of its parts, plus "x_lnvar"
        (jaxphysvae.objective.batch_loss)."""
        return objective.batch_loss(self, params, x, mask, keys, hparams)

    def loss(self, params, x: Float[Array, "B C T"], mask: Bool[Array, "B"], key: jax.Array, hparams: HParams):
        """`batch_loss` with per-sequence keys jax.random.split(key, B), as a training step draws them."""
        return self.batch_loss(params, x, mask, jax.random.split(key, x.shape[0]), hparams)
