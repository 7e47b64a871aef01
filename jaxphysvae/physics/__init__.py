"""Physics models: the interface, the built-in systems, and the diffrax integration used by the decoder."""

from __future__ import annotations

from jaxphysvae.physics.base import NoPhysics, PhysicsModel, SeparablePhysicsModel
from jaxphysvae.physics.integrate import SOLVERS, SolverConfig, integrate, integrate_batch
from jaxphysvae.physics.systems import Diffusion, Hamiltonian, Pendulum, SeparableHamiltonian


def make_physics(config, num_channels: int) -> PhysicsModel:
    """The built-in physics model named by `config.physics`, sized for data of `num_channels` channels."""
    if config.physics == "pendulum":
        return Pendulum()
    if config.physics == "diffusion":
        return Diffusion(num_points=num_channels, observation_map=config.observation_map)
    kind = SeparableHamiltonian if config.hamiltonian_separable else Hamiltonian
    return kind(channels=num_channels, dim_z=config.dim_z_phy, hidden=config.hamiltonian_hidden,
                activation=config.activation, observation_map=config.observation_map)


__all__ = ["Diffusion", "Hamiltonian", "NoPhysics", "Pendulum", "PhysicsModel", "SOLVERS", "SeparableHamiltonian",
           "SeparablePhysicsModel", "SolverConfig", "integrate", "integrate_batch", "make_physics"]
