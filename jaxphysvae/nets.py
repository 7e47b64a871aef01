"""Small flax building blocks."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxphysvae.errors import ConfigError

ACTIVATIONS = {"elu": nn.elu, "relu": nn.relu, "tanh": jnp.tanh, "softplus": nn.softplus, "gelu": nn.gelu,
               "silu": nn.silu}


INITS = ("lecun", "torch")


def initializers(init: str, fan_in: int) -> dict:
    """nn.Dense keyword arguments for a layer of `fan_in` inputs: {} for flax's default ("lecun": lecun-normal
    weights, zero biases), or PyTorch nn.Linear's default ("torch", the reference implementations' networks):
    weights and biases uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)]."""
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; expected one of {', '.join(INITS)}")
    if init == "lecun":
        return {}
    bound = 1.0 / float(fan_in) ** 0.5
    uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)
    return {"kernel_init": uniform, "bias_init": uniform}


def activation_fn(name: str):
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Dense layers of the given widths; the activation follows every layer but the last unless activate_final.

    Maps (..., D_in) to (..., features[-1]). bias_final=False drops the last layer's bias (for an energy whose
    gradient is all that matters). initialisation: "lecun" or "torch" (`initializers`).
    """

    features: Sequence[int]
    activation: str = "elu"
    activate_final: bool = False
    bias_final: bool = True
    initialisation: str = "lecun"

    @nn.compact
    def __call__(self, x):
        act = activation_fn(self.activation)
        for i, width in enumerate(self.features):
            x = nn.Dense(width, use_bias=self.bias_final or i < len(self.features) - 1,
                         **initializers(self.initialisation, x.shape[-1]))(x)
            if i < len(self.features) - 1 or self.activate_final:
                x = act(x)
        return x
