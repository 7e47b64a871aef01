"""The built-in physics models, written against the same `PhysicsModel` interface a user implements."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from jaxphysvae.nets import MLP
from jaxphysvae.physics.base import PhysicsModel, SeparablePhysicsModel


class Pendulum(SeparablePhysicsModel):
    """theta'' = -omega^2 sin(theta); state (theta, theta'), z_P = omega in [0.392, 3.53] rad/s, theta observed.

    The initial state is (x_0, 0): the first observation and zero velocity. The in-ODE correction acts on the
    acceleration only.
    """

    def __init__(self, omega_range=(0.392, 3.53)):
        super().__init__(dim_z=1, state_size=2, z_range=((omega_range[0],), (omega_range[1],)), positive=True,
                         param_names=("omega",), correction_index=(1,))

    def vector_field(self, params, t, state, z):
        return jnp.stack([state[1], -z[0] ** 2 * jnp.sin(state[0])])

    def separable_fields(self, params, z):
        return (lambda t, dtheta: dtheta), (lambda t, theta: -z[0] ** 2 * jnp.sin(theta))

    def initial_state(self, x):
        return jnp.stack([x[0, 0], jnp.zeros_like(x[0, 0])])

    def observe(self, params, state):
        return state[:1]


def laplacian(y: jax.Array, dx: float) -> jax.Array:
    """Central second difference of y along its last axis (grid step dx), with zero ghost cells."""
    padded = jnp.pad(y, [(0, 0)] * (y.ndim - 1) + [(1, 1)])
    return (padded[..., 2:] - 2 * y + padded[..., :-2]) / dx**2


class Diffusion(PhysicsModel):
    """dy/dt = D y_xx on a 1-D grid of num_points points dx apart (the advection-diffusion data's 20 and 0.1) with
    zero ghost cells; z_P = D in [5e-3, 0.2]; the first frame is y(0).

    With observation_map=True (as in phys-VAE's advection-diffusion model and the advdif presets) the observation is
    W y + b with a learned W (C x C, initialised to the identity) shared over time; by default, as Config's default,
    it is y itself.
    """

    def __init__(self, num_points: int = 20, dx: float = 0.1, d_range=(5e-3, 0.2),
                 observation_map: bool = False):
        super().__init__(dim_z=1, state_size=num_points, z_range=((d_range[0],), (d_range[1],)), positive=True,
                         param_names=("D",))
        self.dx = dx
        self.observation_map = observation_map

    def vector_field(self, params, t, state, z):
        return z[0] * laplacian(state, self.dx)

    def initial_state(self, x):
        return x[:, 0]

    def init(self, key):
        if not self.observation_map:
            return {}
        return {"W": jnp.eye(self.state_size), "b": jnp.zeros(self.state_size)}

    def observe(self, params, state):
        return params["W"] @ state + params["b"] if self.observation_map else state


class Hamiltonian(PhysicsModel):
    """A learned Hamiltonian system: state (q, p), dq/dt = dH/dp, dp/dt = -dH/dq with H(q, p, z_P) an MLP.

    The field is `jax.grad` of the network, so training differentiates through gradients. q has one component per
    observed channel; the initial state (q_0, p_0) is predicted by an encoder head. The observation is q, or W q + b
    with a learned map (initialised to the identity). z_P has no physical units: its prior is N(0, I).

    `SeparableHamiltonian` is the variant H = K(p) + V(q, z_P), which admits the symplectic semi-implicit Euler.
    """

    def __init__(self, channels: int = 3, dim_z: int = 0, hidden: Sequence[int] = (128, 128),
                 activation: str = "elu", observation_map: bool = False):
        super().__init__(dim_z=dim_z, state_size=2 * channels, learned_initial_state=True)
        self.channels = channels
        self.observation_map = observation_map
        # H enters only through its gradient: an output bias would be a parameter without gradient
        self.energy = MLP(tuple(hidden) + (1,), activation=activation, bias_final=False)

    def init(self, key):
        c = self.channels
        params = self.init_energy(key)
        if self.observation_map:
            params["W"], params["b"] = jnp.eye(c), jnp.zeros(c)
        return params

    def init_energy(self, key) -> dict:
        """The energy network's parameters: {"H": ...} of H(q, p, z_P)."""
        return {"H": self.energy.init(key, jnp.zeros(2 * self.channels + self.dim_z))}

    def hamiltonian(self, params, q, p, z):
        return self.energy.apply(params["H"], jnp.concatenate([q, p, z]))[0]

    def vector_field(self, params, t, state, z):
        q, p = jnp.split(state, 2)
        dh_dq, dh_dp = jax.grad(self.hamiltonian, argnums=(1, 2))(params, q, p, z)
        return jnp.concatenate([dh_dp, -dh_dq])

    def observe(self, params, state):
        q = state[: self.channels]
        return params["W"] @ q + params["b"] if self.observation_map else q


class SeparableHamiltonian(Hamiltonian, SeparablePhysicsModel):
    """A learned separable Hamiltonian H(q, p, z_P) = K(p) + V(q, z_P), two MLPs: dq/dt = K'(p) depends on p alone
    and dp/dt = -dV/dq on q alone, so the symplectic semi-implicit Euler solver applies."""

    def init_energy(self, key) -> dict:
        k_kinetic, k_potential = jax.random.split(key)
        c = self.channels
        return {"K": self.energy.init(k_kinetic, jnp.zeros(c)),
                "V": self.energy.init(k_potential, jnp.zeros(c + self.dim_z))}

    def hamiltonian(self, params, q, p, z):
        return self.energy.apply(params["K"], p)[0] + self.energy.apply(params["V"], jnp.concatenate([q, z]))[0]

    def separable_fields(self, params, z):
        kinetic = lambda p: self.energy.apply(params["K"], p)[0]
        potential = lambda q: self.energy.apply(params["V"], jnp.concatenate([q, z]))[0]
        return (lambda t, p: jax.grad(kinetic)(p)), (lambda t, q: -jax.grad(potential)(q))


