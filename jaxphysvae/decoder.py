"""The grey-box decoder: the physics ODE (with the in-ODE neural correction f_A) solved by diffrax on the data grid,
observed, plus a residual network; four reconstructions."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxphysvae.config import ModelConfig
from jaxphysvae.latents import Latents, Layout, Networks, applier
from jaxphysvae.nets import MLP
from jaxphysvae.physics import NoPhysics, PhysicsModel
from jaxphysvae.physics.integrate import SYMPLECTIC, SolverConfig, integrate_batch
from jaxphysvae.timewarp import retime


class Reconstructions(NamedTuple):
    """The four decoder outputs, each (B, C, T): physics only, + in-ODE correction, + residual, + both."""

    x_P: jax.Array
    x_PA: jax.Array
    x_PB: jax.Array
    x_PAB: jax.Array


# the decoder's own networks (with the physics model's parameters, what jaxphysvae.train.decoder_decay shrinks)
DECODER_NETWORKS = ("correction", "residual")


class GreyBoxDecoder:
    """(latents, initial states) -> Reconstructions: ds/dt = f_P(t, s; z_P) + f_A(s, z_A1) (f_A an MLP acting on the
    physics' correction_index components) from s0 at times t (T,), observed by the physics model, plus the residual
    MLP(z_P, z_A1, z_A2) reshaped to (C, T)."""

    def __init__(self, config: ModelConfig, layout: Layout, physics: PhysicsModel, solver: SolverConfig, t: np.ndarray,
                 num_channels: int):
        self.layout, self.physics, self.solver, self.t = layout, physics, solver, t
        ct = num_channels * len(t)
        d, act = layout.dims, config.activation
        self.networks: Networks = {}
        self.correction_time = config.correction_time
        if layout.has_correction:
            self.networks["correction"] = (MLP(config.correction_hidden + (len(physics.correction_index),), act,
                                               initialisation=config.init),
                                           physics.state_size + d.aux1 + int(config.correction_time))
        if layout.has_residual:
            self.networks["residual"] = (MLP(config.residual_hidden + (ct,), act, initialisation=config.init),
                                         d.phy + d.aux1 + d.aux2)
        self._apply = applier(self.networks)
        self.time_warp, self.time_warp_anchor = config.time_warp, config.time_warp_anchor

    def trajectories(self, params, z_phy: Float[Array, "B dP"], z_aux1: Float[Array, "B dA1"],
                     s0: Float[Array, "B S"], correction: bool, forward_mode: bool = False) -> Float[Array, "B C T"]:
        """Observed physics trajectories: f_P, plus f_A when `correction`; differentiable in forward mode instead of
        reverse mode where `forward_mode` (jaxphysvae.physics.integrate)."""
        p = self.physics
        physics = params["physics"]
        if isinstance(p, NoPhysics) and not correction:
            states = jnp.broadcast_to(s0[:, None], (s0.shape[0], len(self.t), s0.shape[1]))
        elif self.solver.name == SYMPLECTIC:
            g = lambda t, y, prm, zp: p.separable_fields(prm, zp)[0](t, y)
            h = lambda t, y, prm, zp: p.separable_fields(prm, zp)[1](t, y)
            y1, y2 = jnp.split(s0, 2, axis=-1)
            states = jnp.concatenate(integrate_batch((g, h), (y1, y2), self.t, physics, z_phy, self.solver,
                                                     forward_mode), -1)
        else:
            index = np.asarray(p.correction_index)
            net = self.networks["correction"][0] if correction else None

            def field(t, s, shared, latents):
                prm, correction_params = shared
                zp, za1 = latents
                ds = p.vector_field(prm, t, s, zp)
                if correction:
                    inputs = [s, za1] + ([jnp.reshape(t, (1,)).astype(s.dtype)] if self.correction_time else [])
                    ds = ds.at[index].add(net.apply(correction_params, jnp.concatenate(inputs)))
                return ds

            # only what the field reads goes in: reverse mode accumulates a cotangent of it at every step
            shared = (physics, params["nets"]["correction"] if correction else None)
            states = integrate_batch(field, s0, self.t, shared, (z_phy, z_aux1), self.solver, forward_mode)
        observe = jax.vmap(jax.vmap(lambda s: p.observe(physics, s)))
        return jnp.swapaxes(observe(states), 1, 2)

    def simulate(self, params, z_phy: Float[Array, "B dP"], s0: Float[Array, "B S"],
                 forward_mode: bool = False) -> Float[Array, "B C T"]:
        """Physics-only signals for z_P from initial states s0."""
        return self.trajectories(params, z_phy, jnp.zeros((s0.shape[0], self.layout.dims.aux1)), s0, False,
                                 forward_mode)

    def __call__(self, params, z: Latents, s0: Float[Array, "B S"], forward_mode: bool = False) -> Reconstructions:
        """The four reconstructions of latents z from initial states s0, each re-timed by the last z_A2 unit when
        config.time_warp > 0 (jaxphysvae.timewarp); differentiable in forward mode (jax.jvp, jax.jacfwd) instead of
        reverse mode where `forward_mode`."""
        x_p = self.simulate(params, z.phy, s0, forward_mode)
        if self.layout.has_correction:
            x_pa = self.trajectories(params, z.phy, z.aux1, s0, True, forward_mode)
        else:
            x_pa = x_p
        if self.layout.has_residual:
            r = self._apply(params, "residual", jnp.concatenate(z, -1)).reshape(x_p.shape)
            out = Reconstructions(x_p, x_pa, x_p + r, x_pa + r)
        else:
            out = Reconstructions(x_p, x_pa, x_p, x_pa)
        if self.time_warp == 0:
            return out
        shift = self.time_warp * (len(self.t) - 1) * jnp.tanh(z.aux2[:, -1])
        return Reconstructions(*(retime(x, shift, self.time_warp_anchor) for x in out))
