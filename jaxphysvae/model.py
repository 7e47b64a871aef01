"""The physics-integrated VAE (phys-VAE): encoder, grey-box ODE decoder and objective, as pure functions.

Shapes: B sequences per batch, C channels, T time points, S state size; latent widths d_P, d_A1, d_A2 (a removed
latent has width 0). Latent groups: z_P (physics parameters), z_A1 (in-ODE correction f_A), z_A2 (residual).
See METHOD.md sections 1-3 for the equations. Each group's posterior is a diagonal Gaussian, optionally pushed
through K planar-flow steps whose parameters the encoder produces, optionally followed by an attention context.
Randomness is drawn per sequence from per-sequence keys (B,), so no sequence's sample or noise depends on its batch.
"""

from __future__ import annotations

from typing import NamedTuple

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxphysvae.attention import BatchAttention, SequenceContext
from jaxphysvae.config import Config, HParams
from jaxphysvae.errors import ConfigError
from jaxphysvae.flows import flow_forward, stack_params
from jaxphysvae.nets import MLP
from jaxphysvae.noise import FEATURE_NOISE, INPUT_NOISE, feature_noise, input_noise
from jaxphysvae.physics import NoPhysics, PhysicsModel, SeparablePhysicsModel, make_physics
from jaxphysvae.physics.integrate import SYMPLECTIC, SolverConfig, integrate_batch

GROUPS = ("phy", "aux1", "aux2")
# Config fields that choose the data and the schedule of a run but never enter a traced function
RUN_ONLY = ("dataset", "data_seed", "n_train", "n_valid", "n_test", "epochs", "eval_every", "eval_batch_size",
            "rollbacks", "rollback_lr_factor")


class Latents(NamedTuple):
    """One value per latent group: (B, d_P), (B, d_A1), (B, d_A2)."""

    phy: jax.Array
    aux1: jax.Array
    aux2: jax.Array


class Posterior(NamedTuple):
    """The encoder's output: posterior parameters, the unmixed input and the initial state.

    Attributes:
      mean, lnvar: Latents of the base Gaussian's means and log-variances.
      flows: Latents of raw planar-flow parameters, (B, K (2 d + 1)) per group (width 0 without a flow).
      unmixed: (B, C, T) the cleaned "physics-only" view u of the input (the input itself without an unmixer).
      s0: (B, S) initial ODE state.
    """

    mean: Latents
    lnvar: Latents
    flows: Latents
    unmixed: jax.Array
    s0: jax.Array


class Noise(NamedTuple):
    """A noise model applied in the encoder: kind (static, see jaxphysvae.noise), level p, per-sequence keys (B,)."""

    kind: str
    level: jax.Array
    keys: jax.Array


class Reconstructions(NamedTuple):
    """The four decoder outputs, each (B, C, T): physics only, + in-ODE correction, + residual, + both."""

    x_P: jax.Array
    x_PA: jax.Array
    x_PB: jax.Array
    x_PAB: jax.Array


def masked_mean(v: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of per-sequence values v (B,) over the rows where mask (B,) is True."""
    count = jnp.sum(mask.astype(v.dtype))
    return jnp.sum(jnp.where(mask, v, 0.0)) / jnp.maximum(count, 1.0)


class PhysVAE:
    """A phys-VAE for sequences of C channels and T time points with step dt.

    All methods are pure functions of their arguments (the instance holds only static structure), so they can be
    jitted, vmapped and differentiated.
    """

    def __init__(self, config: Config, num_channels: int, num_steps: int, dt: float,
                 physics: PhysicsModel | None = None, data_stats: dict | None = None):
        """data_stats: per-channel 'std', 'min' and 'max' (C,) of the training data, used by input noise."""
        self.config = config
        self.data_stats = None if data_stats is None else {k: jnp.asarray(v, jnp.float32)
                                                           for k, v in data_stats.items()}
        self.num_channels, self.num_steps, self.dt = num_channels, num_steps, float(dt)
        self.t = (np.arange(num_steps) * self.dt).astype(np.float32)
        self.physics_from_config = physics is None
        base = make_physics(config, num_channels) if physics is None else physics
        self.physics = base if config.use_physics else NoPhysics(base)
        self.solver = SolverConfig(config.solver, config.substeps, config.rtol, config.atol, config.max_steps)
        p = self.physics
        self.dims = Latents(p.dim_z if config.use_physics else 0, max(config.dim_z_aux1, 0),
                            max(config.dim_z_aux2, 0))
        self.flow_steps = Latents(config.flow_phy if self.dims.phy else 0, config.flow_aux1 if self.dims.aux1 else 0,
                                  config.flow_aux2 if self.dims.aux2 else 0)
        self.attention = Latents(config.attention_phy, config.attention_aux1, config.attention_aux2)
        self.has_correction = config.dim_z_aux1 >= 0
        self.has_residual = config.dim_z_aux2 >= 0
        self._check()
        self.nets = self._networks()

    # --- structure ----------------------------------------------------------------------------------------------
    def _check(self):
        c, p = self.config, self.physics
        if self.solver.name == SYMPLECTIC and not (isinstance(p, SeparablePhysicsModel) and c.use_physics):
            raise ConfigError(f"the symplectic solver needs separable physics (a SeparablePhysicsModel); "
                              f"{type(p).__name__ + ' is not separable' if c.use_physics else 'physics is off'}")
        if c.use_physics and c.dim_z_phy != p.dim_z:
            raise ConfigError(f"physics {c.physics!r} has {p.dim_z} parameter(s): set dim_z_phy={p.dim_z}, "
                              f"got {c.dim_z_phy}")
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

    def _networks(self) -> dict[str, tuple[nn.Module, int | tuple]]:
        """Each network with its input width (or input shape)."""
        c, d, p = self.config, self.dims, self.physics
        ct = self.num_channels * self.num_steps
        act = c.activation
        nets = {}

        for name, width, steps, context in zip(GROUPS, d, self.flow_steps, self.attention):
            if width == 0:
                continue
            nets[f"feat_{name}"] = (MLP(c.feat_hidden + (c.feat_dim,), act, activate_final=True), ct)
            nets[f"mean_{name}"] = (MLP(c.head_hidden + (width,), act), c.feat_dim)
            nets[f"lnvar_{name}"] = (MLP(c.head_hidden + (width,), act), c.feat_dim)
            if steps:
                nets[f"flow_{name}"] = (nn.Dense(steps * (2 * width + 1)), c.feat_dim)
            if context == "seq":
                nets[f"context_{name}"] = (SequenceContext(c.attention_dim, c.feat_dim),
                                           (self.num_channels, self.num_steps))
            elif context == "batch":
                nets[f"attention_{name}"] = (BatchAttention(), width)
        if c.unmixer == "residual":
            nets["unmixer"] = (MLP(c.unmixer_hidden + (ct,), act), ct + d.aux1 + d.aux2)
        elif c.unmixer == "linear":
            nets["unmix_map"] = (nn.Dense(self.num_channels), self.num_channels)
            nets["unmixer"] = (MLP(c.unmixer_hidden + (ct,), act), d.aux1 + d.aux2)
        if p.learned_initial_state:
            nets["initial_state"] = (MLP(c.init_hidden + (p.state_size,), act), ct)
        if self.has_correction:
            idx = p.correction_index
            nets["correction"] = (MLP(c.correction_hidden + (len(idx),), act), p.state_size + d.aux1)
        if self.has_residual:
            nets["residual"] = (MLP(c.residual_hidden + (ct,), act), d.phy + d.aux1 + d.aux2)
        return nets

    def identity(self) -> str | None:
        """What fixes this model's traced programs besides the package's source (jaxphysvae.programs): the
        configuration (but for the fields that only choose data and schedule, RUN_ONLY), the data's shape and step,
        and the data statistics; None for physics supplied by the caller, whose code the program cache cannot vouch
        for."""
        if not self.physics_from_config:
            return None
        config = {k: v for k, v in self.config.to_json().items() if k not in RUN_ONLY}
        stats = None if self.data_stats is None else {k: np.asarray(v).tobytes().hex()
                                                      for k, v in sorted(self.data_stats.items())}
        return repr((sorted(config.items()), self.num_channels, self.num_steps, self.dt, stats))

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

    def _apply(self, params, name, x):
        return self.nets[name][0].apply(params["nets"][name], x)

    # --- encoder ------------------------------------------------------------------------------------------------
    def _branch(self, params, name, x, noise: Noise | None):
        """Mean, log-variance and raw flow parameters of one latent group from its input x (B, C, T)."""
        group = GROUPS.index(name)
        width, steps = self.dims[group], self.flow_steps[group]
        b = x.shape[0]
        if width == 0:
            empty = jnp.zeros((b, 0), x.dtype)
            return empty, empty, empty
        h = self._apply(params, f"feat_{name}", x.reshape(b, -1))
        if self.attention[group] == "seq":
            h = h + h * self._apply(params, f"context_{name}", x)
        if noise is not None and noise.kind in FEATURE_NOISE:
            keys = jax.vmap(lambda k: jax.random.fold_in(k, group))(noise.keys)
            h = feature_noise(noise.kind, h, keys, noise.level, self.config.noise_seq_fraction)
        mean, lnvar = self._apply(params, f"mean_{name}", h), self._apply(params, f"lnvar_{name}", h)
        if self.config.lnvar_min is not None:  # a smooth lower bound: the posterior cannot collapse to a point
            lnvar = self.config.lnvar_min + nn.softplus(lnvar - self.config.lnvar_min)
        if name == "phy" and self.physics.positive:
            mean = nn.softplus(mean)
        flow = self._apply(params, f"flow_{name}", h) if steps else jnp.zeros((b, 0), x.dtype)
        return mean, lnvar, flow

    def physics_mean(self, params, u: jax.Array) -> jax.Array:
        """The physics encoder's base mean of z_P from a (cleaned) input u of shape (B, C, T): (B, d_P)."""
        return self._branch(params, "phy", u, None)[0]

    def encode(self, params, x: jax.Array, noise: Noise | None = None) -> Posterior:
        """Posterior parameters, unmixed input and initial state of a batch x of shape (B, C, T).

        noise: an input noise corrupts x before everything else; a feature noise zeroes units of every branch's
        features. The initial state is taken from the (possibly noisy) input like everything else.
        """
        if noise is not None and noise.kind in INPUT_NOISE:
            if self.data_stats is None:
                raise ConfigError(f"{noise.kind} input noise needs the training data's per-channel statistics: "
                                  f"build the model with data_stats")
            x = input_noise(noise.kind, x, noise.keys, noise.level, self.data_stats)
        b = x.shape[0]
        flat = x.reshape(b, -1)
        m1, v1, f1 = self._branch(params, "aux1", x, noise)
        m2, v2, f2 = self._branch(params, "aux2", x, noise)
        if self.config.unmixer == "residual":
            u = x + self._apply(params, "unmixer", jnp.concatenate([flat, m1, m2], -1)).reshape(x.shape)
        elif self.config.unmixer == "linear":
            mapped = self._apply(params, "unmix_map", jnp.swapaxes(x, 1, 2))
            u = jnp.swapaxes(mapped, 1, 2) + self._apply(params, "unmixer",
                                                         jnp.concatenate([m1, m2], -1)).reshape(x.shape)
        else:
            u = x
        mp, vp, fp = self._branch(params, "phy", u, noise)
        if self.physics.learned_initial_state:
            s0 = self._apply(params, "initial_state", flat)
        else:
            s0 = jax.vmap(self.physics.initial_state)(x)
        return Posterior(Latents(mp, m1, m2), Latents(vp, v1, v2), Latents(fp, f1, f2), u, s0)

    def _priors(self):
        pm, ps = self.physics.prior() if self.dims.phy else (np.zeros(0, np.float32), np.ones(0, np.float32))
        return [distrax.Normal(jnp.asarray(pm), jnp.asarray(ps)), distrax.Normal(0.0, 1.0), distrax.Normal(0.0, 1.0)]

    def latents(self, params, posterior: Posterior, keys: jax.Array | None, mask: jax.Array | None = None):
        """Latents for the decoder and the KL term per sequence.

        Args:
          keys: per-sequence keys (B,) for reparameterised samples, or None for the posterior mean (the base mean
            pushed through the flows; its KL is the closed form of the base Gaussian, for reporting only).
          mask: (B,) valid rows, excluded from the keys of a "batch" attention context.

        Returns:
          (z, kl): Latents (B, d) after flows, attention and clipping of z_P to its range; kl (B,) is
          log q_0(z_0) - sum_k log|det J_k| - log p(z_K) for a flowed group (a one-sample estimate), and the closed
          form KL(q_0 || p) for a group without flow or when config.flow_kl == "published_base_kl".
        """
        z, kl = [], 0.0
        for g, (m, v, raw, prior) in enumerate(zip(posterior.mean, posterior.lnvar, posterior.flows,
                                                    self._priors())):
            q0 = distrax.Normal(m, jnp.exp(0.5 * v))
            group_kl = jnp.sum(q0.kl_divergence(prior), axis=-1)  # closed form, replaced below for a sampled flow
            if keys is None:
                z0 = m
            else:
                eps = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, g), m.shape[1:]))(keys)
                z0 = m + jnp.exp(0.5 * v) * eps
            steps = self.flow_steps[g]
            if steps:
                zk, log_det = flow_forward(z0, stack_params(raw, steps, m.shape[-1]), self.config.flow_margin)
                if keys is not None and self.config.flow_kl == "exact":
                    group_kl = jnp.sum(q0.log_prob(z0), -1) - log_det - jnp.sum(prior.log_prob(zk), -1)
            else:
                zk = z0
            if self.attention[g] == "batch" and m.shape[-1]:
                name = f"attention_{GROUPS[g]}"
                zk = self.nets[name][0].apply(params["nets"][name], zk, mask)
            z.append(zk)
            kl = kl + group_kl
        return Latents(self.physics.clip(z[0]), z[1], z[2]), kl

    # --- decoder ------------------------------------------------------------------------------------------------
    def _trajectories(self, params, z_phy, z_aux1, s0, correction: bool) -> jax.Array:
        """Observed physics trajectories (B, C, T) from z_P (B, d_P), z_A1 (B, d_A1) and initial states s0 (B, S):
        f_P, plus f_A when `correction`."""
        p = self.physics
        physics = params["physics"]
        if isinstance(p, NoPhysics) and not correction:
            states = jnp.broadcast_to(s0[:, None], (s0.shape[0], self.num_steps, s0.shape[1]))
        elif self.solver.name == SYMPLECTIC:
            g = lambda t, y, prm, zp: p.separable_fields(prm, zp)[0](t, y)
            h = lambda t, y, prm, zp: p.separable_fields(prm, zp)[1](t, y)
            y1, y2 = jnp.split(s0, 2, axis=-1)
            states = jnp.concatenate(integrate_batch((g, h), (y1, y2), self.t, physics, z_phy, self.solver), -1)
        else:
            index = np.asarray(p.correction_index)
            net = self.nets["correction"][0] if correction else None

            def field(t, s, shared, latents):
                prm, correction_params = shared
                zp, za1 = latents
                ds = p.vector_field(prm, t, s, zp)
                if correction:
                    ds = ds.at[index].add(net.apply(correction_params, jnp.concatenate([s, za1])))
                return ds

            # only what the field reads goes in: reverse mode accumulates a cotangent of it at every step
            shared = (physics, params["nets"]["correction"] if correction else None)
            states = integrate_batch(field, s0, self.t, shared, (z_phy, z_aux1), self.solver)
        observe = jax.vmap(jax.vmap(lambda s: p.observe(physics, s)))
        return jnp.swapaxes(observe(states), 1, 2)

    def simulate(self, params, z_phy: jax.Array, s0: jax.Array) -> jax.Array:
        """Physics-only signals (B, C, T) for z_P (B, d_P) from initial states s0 (B, S)."""
        return self._trajectories(params, z_phy, jnp.zeros((s0.shape[0], self.dims.aux1)), s0, False)

    def decode(self, params, z: Latents, s0: jax.Array) -> Reconstructions:
        """The four reconstructions of latents z from initial states s0 (B, S)."""
        x_p = self.simulate(params, z.phy, s0)
        if self.has_correction:
            x_pa = self._trajectories(params, z.phy, z.aux1, s0, True)
        else:
            x_pa = x_p
        if self.has_residual:
            r = self._apply(params, "residual", jnp.concatenate(z, -1)).reshape(x_p.shape)
            return Reconstructions(x_p, x_pa, x_p + r, x_pa + r)
        return Reconstructions(x_p, x_pa, x_p, x_pa)

    # --- objective ----------------------------------------------------------------------------------------------
    def x_lnvar(self, params, hparams: HParams) -> jax.Array:
        return params["x_lnvar"] if self.config.learn_x_lnvar else hparams.x_lnvar

    def sequence_losses(self, params, x: jax.Array, mask: jax.Array, keys: jax.Array,
                        hparams: HParams) -> dict[str, jax.Array]:
        """The training objective of METHOD.md section 1 and its parts, per sequence.

        Args:
          x: (B, C, T) clean data, the targets; mask: (B,) valid rows (used only by a "batch" attention context);
          keys: (B,) per-sequence keys, the randomness of each sequence's sample, augmentation and noise (so a
            sequence's terms do not depend on the rest of its batch, except through a "batch" context). The
            encoder sees x corrupted by config.noise at level hparams.noise (clean when the kind is "none").

        Returns:
          {name: (B,)}: "objective" = ||x_PAB - x||^2 + (kl_weight + alpha) sigma^2 KL + gamma R_DA1 + beta R_DA2
          + alpha R_ppc with sigma^2 = exp(x_lnvar), and "sse", "kl", "neg_elbo", "r_da1", "r_da2", "r_ppc". With
          a learned variance the squared error is weighted sigma^2_sg / sigma^2 plus C T sigma^2_sg ln sigma^2
          (sg = stop-gradient): the same value and network gradients, and the maximum-likelihood gradient for
          sigma^2.
        """
        parts = jax.vmap(lambda k: jax.random.split(k, 3))(keys)
        k_sample, k_aug, k_noise = parts[:, 0], parts[:, 1], parts[:, 2]
        noise = Noise(self.config.noise, hparams.noise, k_noise)
        post = self.encode(params, x, noise if self.config.noise != "none" else None)
        z, kl = self.latents(params, post, k_sample, mask)
        rec = self.decode(params, z, post.s0)
        sq = lambda a, b: jnp.sum((a - b) ** 2, axis=(1, 2))
        sse = sq(rec.x_PAB, x)
        zero = jnp.zeros_like(sse)
        r_da1 = sq(post.unmixed, jax.lax.stop_gradient(rec.x_P)) if self.config.unmixer != "none" else zero
        if self.config.ppc == "all":
            r_ppc = (sq(rec.x_PA, rec.x_P) + sq(rec.x_PB, rec.x_P) + sq(rec.x_PAB, rec.x_PA)
                     + sq(rec.x_PAB, rec.x_PB)) / 4
        else:
            r_ppc = sq(rec.x_PB, rec.x_P)
        if self.dims.phy:
            z_aug = jax.vmap(lambda k: self.physics.sample_augmentation(k, 1)[0])(k_aug)
            x_aug = jax.lax.stop_gradient(self.simulate(params, z_aug, post.s0))
            r_da2 = jnp.sum((self.physics_mean(params, x_aug) - z_aug) ** 2, axis=-1)
        else:
            r_da2 = zero
        lnvar = self.x_lnvar(params, hparams)
        var_sg = jnp.exp(jax.lax.stop_gradient(lnvar))
        ct = self.num_channels * self.num_steps
        nll_scaled = sse * var_sg * jnp.exp(-lnvar) + ct * var_sg * (lnvar - jax.lax.stop_gradient(lnvar))
        objective = (nll_scaled + (hparams.kl_weight + hparams.alpha) * var_sg * kl + hparams.gamma * r_da1
                     + hparams.beta * r_da2 + hparams.alpha * r_ppc)
        neg_elbo = sse / (2 * jnp.exp(lnvar)) + 0.5 * ct * (jnp.log(2 * jnp.pi) + lnvar) + kl
        return {"objective": objective, "sse": sse, "kl": kl, "neg_elbo": neg_elbo, "r_da1": r_da1,
                "r_da2": r_da2, "r_ppc": r_ppc}

    def batch_loss(self, params, x: jax.Array, mask: jax.Array, keys: jax.Array, hparams: HParams):
        """The training objective on a batch, the one that every training step differentiates: the masked mean of
        `sequence_losses` over the valid rows.

        Args:
          x: (B, C, T); mask: (B,) valid rows (a masked row adds nothing); keys: (B,) one key per sequence.

        Returns:
          (loss, metrics): the mean objective (a scalar), and the masked mean of every part ("loss" the objective,
          "sse", "kl", "neg_elbo", "r_da1", "r_da2", "r_ppc") plus "x_lnvar", the log noise variance in use.
        """
        terms = self.sequence_losses(params, x, mask, keys, hparams)
        metrics = {name: masked_mean(v, mask) for name, v in terms.items()}
        metrics["loss"] = metrics.pop("objective")
        metrics["x_lnvar"] = jnp.asarray(self.x_lnvar(params, hparams), jnp.float32)
        return metrics["loss"], metrics

    def loss(self, params, x: jax.Array, mask: jax.Array, key: jax.Array, hparams: HParams):
        """`batch_loss` with per-sequence keys jax.random.split(key, B), as a training step draws them."""
        return self.batch_loss(params, x, mask, jax.random.split(key, x.shape[0]), hparams)
