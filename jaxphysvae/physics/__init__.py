"""Physics models: the interface, the built-in systems, and the diffrax integration used by the decoder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jaxphysvae.physics.base import NoPhysics, PhysicsModel, SeparablePhysicsModel
from jaxphysvae.physics.integrate import SOLVERS, SolverConfig, integrate, integrate_batch
from jaxphysvae.physics.least_squares import LeastSquaresFit, least_squares
from jaxphysvae.physics.systems import Diffusion, Hamiltonian, Pendulum, SeparableHamiltonian
from jaxphysvae.physics.user import is_import_path
from jaxphysvae.physics.user import load as load_physics

if TYPE_CHECKING:
    from jaxphysvae.config import ModelConfig


def make_physics(config: "ModelConfig", num_channels: int) -> PhysicsModel:
    """The physics model that `config.physics` names: a built-in system sized for data of `num_channels` channels,
    or a user's model from its import path "package.module:Name" (jaxphysvae.physics.user.load)."""
    if is_import_path(config.physics):
        return load_physics(config.physics)
    if config.physics == "pendulum":
        return Pendulum()
    if config.physics == "diffusion":
        return Diffusion(num_points=num_channels, observation_map=config.observation_map)
    kind = SeparableHamiltonian if config.hamiltonian_separable else Hamiltonian
    return kind(channels=num_channels, dim_z=config.dim_z_phy, hidden=config.hamiltonian_hidden,
                activation=config.activation, observation_map=config.observation_map)


__all__ = ["Diffusion", "Hamiltonian", "LeastSquaresFit", "NoPhysics", "Pendulum", "PhysicsModel", "SOLVERS",
           "SeparableHamiltonian", "SeparablePhysicsModel", "SolverConfig", "integrate", "integrate_batch",
           "least_squares", "load_physics", "make_physics"]
