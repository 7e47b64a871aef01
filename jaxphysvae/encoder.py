"""The encoder: one branch per latent group (features, posterior heads, flow parameters, a sequence context), the
unmixer that cleans the physics encoder's input, and the initial-state head."""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxphysvae.attention import SequenceContext
from jaxphysvae.config import ModelConfig
from jaxphysvae.errors import ConfigError
from jaxphysvae.latents import GROUPS, Latents, Layout, Networks, applier
from jaxphysvae.nets import MLP, initializers
from jaxphysvae.noise import FEATURE_NOISE, INPUT_NOISE, feature_noise, input_noise
from jaxphysvae.physics import PhysicsModel


class Posterior(NamedTuple):
    """The encoder's output: posterior parameters, the unmixed input and the initial state.

    Attributes:
      mean, lnvar: Latents of the base Gaussian's means and log-variances, (B, d) per group.
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


class Encoder:
    """x (B, C, T) -> Posterior. Each latent group has a branch: an MLP feature extractor of the flattened input
    (gated by a `seq` attention context when configured), Gaussian mean and log-variance heads (softplus on a
    positive z_P; a smooth floor at config.lnvar_min) and a linear head giving the planar flows' parameters. The
    z_A branches read x; the unmixer maps x and their means to u, which the z_P branch reads. The initial state is
    the physics model's `initial_state(x)`, or an MLP head of x (its first config.init_window samples) when the
    physics learns it."""

    def __init__(self, config: ModelConfig, layout: Layout, physics: PhysicsModel, num_channels: int, num_steps: int,
                 data_stats: dict | None):
        self.config, self.layout, self.physics = config, layout, physics
        self.num_channels, self.num_steps = num_channels, num_steps
        self.data_stats = data_stats
        self.init_window = num_steps if config.init_window is None else config.init_window
        if self.init_window > num_steps:
            raise ConfigError(f"init_window={config.init_window}: the initial-state head cannot read more samples "
                              f"than a sequence has ({num_steps})")
        self.networks = self._networks()
        self._apply = applier(self.networks)

    def _networks(self) -> Networks:
        c, d, p = self.config, self.layout.dims, self.physics
        ct = self.num_channels * self.num_steps
        init = c.init
        mlp = lambda widths, **options: MLP(widths, c.activation, initialisation=init, **options)
        nets = {}
        for name, width, steps, context in zip(GROUPS, d, self.layout.flow_steps, self.layout.attention):
            if width == 0:
                continue
            nets[f"feat_{name}"] = (mlp(c.feat_hidden + (c.feat_dim,), activate_final=True), ct)
            nets[f"mean_{name}"] = (mlp(c.head_hidden + (width,)), c.feat_dim)
            nets[f"lnvar_{name}"] = (mlp(c.head_hidden + (width,)), c.feat_dim)
            if steps:
                nets[f"flow_{name}"] = (nn.Dense(steps * (2 * width + 1), **initializers(init, c.feat_dim)),
                                        c.feat_dim)
            if context == "seq":
                nets[f"context_{name}"] = (SequenceContext(c.attention_dim, c.feat_dim),
                                           (self.num_channels, self.num_steps))
        if c.unmixer == "residual":
            nets["unmixer"] = (mlp(c.unmixer_hidden + (ct,)), ct + d.aux1 + d.aux2)
        elif c.unmixer == "linear":
            nets["unmix_map"] = (nn.Dense(self.num_channels, **initializers(init, self.num_channels)),
                                 self.num_channels)
            nets["unmixer"] = (mlp(c.unmixer_hidden + (ct,)), d.aux1 + d.aux2)
        if p.learned_initial_state:
            nets["initial_state"] = (mlp(c.init_hidden + (p.state_size,)), self.num_channels * self.init_window)
        return nets

    def branch(self, params, name: str, x: Float[Array, "B C T"], noise: Noise | None):
        """Mean (B, d), log-variance (B, d) and raw flow parameters (B, K (2 d + 1)) of latent group `name`."""
        group = GROUPS.index(name)
        width, steps = self.layout.dims[group], self.layout.flow_steps[group]
        b = x.shape[0]
        if width == 0:
            empty = jnp.zeros((b, 0), x.dtype)
            return empty, empty, empty
        h = self._apply(params, f"feat_{name}", x.reshape(b, -1))
        if self.layout.attention[group] == "seq":
            h = h + h * self._apply(params, f"context_{name}", x)
        if noise is not None and noise.kind in FEATURE_NOISE:
            keys = jax.vmap(lambda k: jax.random.fold_in(k, group))(noise.keys)
            h = feature_noise(noise.kind, h, keys, noise.level, self.config.noise_seq_fraction)
        mean, lnvar = self._apply(params, f"mean_{name}", h), self._apply(params, f"lnvar_{name}", h)
        if self.config.lnvar_min is not None:  # a smooth lower bound: the posterior cannot collapse to a point
            lnvar = self.config.lnvar_min + nn.softplus(lnvar - self.config.lnvar_min)
        if name == "phy" and self.physics.positive and self.config.z_phy_space == "physical":
            mean = nn.softplus(mean)
        flow = self._apply(params, f"flow_{name}", h) if steps else jnp.zeros((b, 0), x.dtype)
        return mean, lnvar, flow

    def seen(self, x: Float[Array, "B C T"], noise: Noise | None) -> Float[Array, "B C T"]:
        """What the encoder reads of x: x corrupted by an input noise (the same draw for the same keys), else x."""
        if noise is None or noise.kind not in INPUT_NOISE:
            return x
        if self.data_stats is None:
            raise ConfigError(f"{noise.kind} input noise needs the training data's per-channel statistics: "
                              f"build the model with data_stats")
        return input_noise(noise.kind, x, noise.keys, noise.level, self.data_stats)

    def __call__(self, params, x: Float[Array, "B C T"], noise: Noise | None = None) -> Posterior:
        """The posterior of a batch. An input noise corrupts x before everything else; a feature noise zeroes units
        of every branch's features. The initial state is taken from the (possibly noisy) input like the rest."""
        x = self.seen(x, noise)
        b = x.shape[0]
        flat = x.reshape(b, -1)
        m1, v1, f1 = self.branch(params, "aux1", x, noise)
        m2, v2, f2 = self.branch(params, "aux2", x, noise)
        if self.config.unmixer == "residual":
            u = x + self._apply(params, "unmixer", jnp.concatenate([flat, m1, m2], -1)).reshape(x.shape)
        elif self.config.unmixer == "linear":
            mapped = self._apply(params, "unmix_map", jnp.swapaxes(x, 1, 2))
            u = jnp.swapaxes(mapped, 1, 2) + self._apply(params, "unmixer",
                                                         jnp.concatenate([m1, m2], -1)).reshape(x.shape)
        else:
            u = x
        mp, vp, fp = self.branch(params, "phy", u, noise)
        if self.physics.learned_initial_state:
            s0 = self._apply(params, "initial_state", x[:, :, :self.init_window].reshape(b, -1))
        else:
            s0 = jax.vmap(self.physics.initial_state)(x)
        return Posterior(Latents(mp, m1, m2), Latents(vp, v1, v2), Latents(fp, f1, f2), u, s0)
