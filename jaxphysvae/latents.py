"""The three latent groups of a phys-VAE and how a configuration lays them out.

z_P (`phy`) holds the physics parameters, z_A1 (`aux1`) drives the in-ODE neural correction f_A, z_A2 (`aux2`) the
residual network. Each group's posterior is a diagonal Gaussian, optionally pushed through K planar-flow steps and
followed by an attention context.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import jax

from jaxphysvae.config import ModelConfig
from jaxphysvae.physics import PhysicsModel

GROUPS = ("phy", "aux1", "aux2")


class Latents(NamedTuple):
    """One value per latent group, e.g. arrays (B, d_P), (B, d_A1), (B, d_A2)."""

    phy: jax.Array
    aux1: jax.Array
    aux2: jax.Array


class Layout(NamedTuple):
    """The static shape of the latents: width d (0 when a group is absent), planar steps K and attention context per
    group, and whether the decoder has the in-ODE correction and the residual network."""

    dims: Latents
    flow_steps: Latents
    attention: Latents
    has_correction: bool
    has_residual: bool

    @classmethod
    def of(cls, config: ModelConfig, physics: PhysicsModel) -> "Layout":
        dims = Latents(physics.dim_z if config.use_physics else 0, max(config.dim_z_aux1, 0),
                       max(config.dim_z_aux2, 0))
        steps = Latents(*(k if d else 0 for k, d in zip((config.flow_phy, config.flow_aux1, config.flow_aux2), dims)))
        attention = Latents(config.attention_phy, config.attention_aux1, config.attention_aux2)
        return cls(dims, steps, attention, config.dim_z_aux1 >= 0, config.dim_z_aux2 >= 0)


# A part's networks: {name: (flax module, input width or input shape without the batch axis)}
Networks = dict[str, tuple[nn.Module, "int | tuple[int, ...]"]]


def applier(networks: Networks) -> Callable:
    """apply(params, name, x): network `name` of `networks` on x with its parameters params["nets"][name]."""

    def apply(params, name: str, x: jax.Array) -> jax.Array:
        return networks[name][0].apply(params["nets"][name], x)

    return apply
