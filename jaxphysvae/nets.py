"""Small flax building blocks."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from jaxphysvae.errors import ConfigError

ACTIVATIONS = {"elu": nn.elu, "relu": nn.relu, "tanh": jnp.tanh, "softplus": nn.softplus, "gelu": nn.gelu,
               "silu": nn.silu}


def activation_fn(name: str):
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Dense layers of the given widths; the activation follows every layer but the last unless activate_final.

    Maps (..., D_in) to (..., features[-1]). bias_final=False drops the last layer's bias (for an energy whose
    gradient is all that matters).
    """

    features: Sequence[int]
    activation: str = "elu"
    activate_final: bool = False
    bias_final: bool = True

    @nn.compact
    def __call__(self, x):
        act = activation_fn(self.activation)
        for i, width in enumerate(self.features):
            x = nn.Dense(width, use_bias=self.bias_final or i < len(self.features) - 1)(x)
            if i < len(self.features) - 1 or self.activate_final:
                x = act(x)
        return x
