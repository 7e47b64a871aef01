"""Latent samples and the KL term: reparameterised draws from each group's base Gaussian, planar flows, the batch
attention context, the priors, and the per-sequence KL (exact for flows)."""

from __future__ import annotations

import distrax
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxphysvae.attention import BatchAttention
from jaxphysvae.config import ModelConfig
from jaxphysvae.encoder import Posterior
from jaxphysvae.flows import flow_forward, stack_params
from jaxphysvae.latents import GROUPS, Latents, Layout, Networks
from jaxphysvae.physics import PhysicsModel


class LatentPosterior:
    """Posterior -> (latents, KL). z_P's prior is the physics model's (N(m, s^2) from its range, or N(0, I)); the
    auxiliary groups' prior is N(0, I). Samples of z_P are clipped to its physical range (config.clip_z_phy).
    With config.z_phy_space == "logit", z_P's group lives in logit space instead: prior N(0, (pi / sqrt 3)^2), and
    its samples are mapped into the range (PhysicsModel.to_range), not clipped."""

    def __init__(self, config: ModelConfig, layout: Layout, physics: PhysicsModel):
        self.config, self.layout, self.physics = config, layout, physics
        self.networks: Networks = {f"attention_{name}": (BatchAttention(), width)
                                   for name, width, context in zip(GROUPS, layout.dims, layout.attention)
                                   if width and context == "batch"}

    def priors(self) -> list[distrax.Normal]:
        """The prior of each group, in GROUPS order."""
        d = self.layout.dims.phy
        if d and self.config.z_phy_space == "logit":
            pm, ps = np.zeros(d, np.float32), np.full(d, np.pi / np.sqrt(3.0), np.float32)
        else:
            pm, ps = self.physics.prior() if d else (np.zeros(0, np.float32), np.ones(0, np.float32))
        return [distrax.Normal(jnp.asarray(pm), jnp.asarray(ps)), distrax.Normal(0.0, 1.0), distrax.Normal(0.0, 1.0)]

    def __call__(self, params, posterior: Posterior, keys: jax.Array | None,
                 mask: jax.Array | None = None) -> tuple[Latents, Float[Array, "B"]]:
        """Latents for the decoder and the KL term per sequence.

        Args:
          keys: per-sequence keys (B,) for reparameterised samples, or None for the posterior mean (the base mean
            pushed through the flows; its KL is the closed form of the base Gaussian, for reporting only).
          mask: (B,) valid rows, excluded from the keys of a "batch" attention context.

        Returns:
          (z, kl): Latents (B, d) after flows, attention and clipping (or mapping) of z_P to its range; kl (B,) is
          log q_0(z_0) - sum_k log|det J_k| - log p(z_K) for a flowed group (a one-sample estimate), and the closed
          form KL(q_0 || p) for a group without flow or when config.flow_kl == "published_base_kl".
        """
        z, kl = [], 0.0
        for g, (m, v, raw, prior) in enumerate(zip(posterior.mean, posterior.lnvar, posterior.flows,
                                                    self.priors())):
            q0 = distrax.Normal(m, jnp.exp(0.5 * v))
            group_kl = jnp.sum(q0.kl_divergence(prior), axis=-1)  # closed form, replaced below for a sampled flow
            if keys is None:
                z0 = m
            else:
                eps = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, g), m.shape[1:]))(keys)
                z0 = m + jnp.exp(0.5 * v) * eps
            steps = self.layout.flow_steps[g]
            if steps:
                zk, log_det = flow_forward(z0, stack_params(raw, steps, m.shape[-1]), self.config.flow_margin)
                if keys is not None and self.config.flow_kl == "exact":
                    group_kl = jnp.sum(q0.log_prob(z0), -1) - log_det - jnp.sum(prior.log_prob(zk), -1)
            else:
                zk = z0
            if self.layout.attention[g] == "batch" and m.shape[-1]:
                name = f"attention_{GROUPS[g]}"
                zk = self.networks[name][0].apply(params["nets"][name], zk, mask)
            z.append(zk)
            kl = kl + group_kl
        if self.config.z_phy_space == "logit" and self.layout.dims.phy:
            z_phy = self.physics.to_range(z[0])
        elif self.config.clip_z_phy:
            z_phy = self.physics.clip(z[0])
        else:
            z_phy = jnp.maximum(z[0], 0.0) if self.physics.positive else z[0]
        return Latents(z_phy, z[1], z[2]), kl
