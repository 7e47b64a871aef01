"""The physics-model interface: what a known (incomplete) ODE must provide to sit inside a phys-VAE decoder.

A physics model describes one sequence; the library vmaps it over the batch. To plug in your own system, subclass
`PhysicsModel` and implement the abstract `vector_field` and `observe` and, unless the encoder predicts it
(learned_initial_state=True), `initial_state`; a class that lacks one of them cannot be instantiated (a TypeError or
ConfigError that names the method). A field that splits into position and velocity parts subclasses
`SeparablePhysicsModel` and also implements `separable_fields`, which the symplectic solver integrates:

    class Spring(PhysicsModel):
        def __init__(self):
            super().__init__(dim_z=1, state_size=2, z_range=((0.5,), (3.0,)), positive=True,
                             param_names=("k",), correction_index=(1,))
        def vector_field(self, params, t, state, z):
            return jnp.stack([state[1], -z[0] * state[0]])
        def initial_state(self, x):              # x: (C, T) one observed sequence
            return jnp.stack([x[0, 0], 0.0])
        def observe(self, params, state):        # state: (S,) -> (C,)
            return state[:1]

Conventions (the shape names of the annotations): `state` has shape (S,) = (state_size,), `z` (the physics latent
z_P) has shape (dim_z,), `x` is one observed sequence (C, T) of C channels and T time steps, time `t` is a scalar in
the data's time unit, and `params` is the pytree returned by `init` (learnable parts of the physics, e.g. the network
of a learned Hamiltonian; empty for fully known physics).
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxphysvae.errors import ConfigError

Params = Any


class PhysicsModel(abc.ABC):
    """Base class of physics models.

    Args:
      dim_z: size of z_P (0 for none).
      state_size: size S of the ODE state.
      z_range: ((lo_1, ...), (hi_1, ...)) physical range of z_P, or None when z_P has no physical units (its prior
        is then N(0, I)). With a range the prior is N(m, s^2), m = (lo + hi) / 2, s = max(1e-3, 0.866 (hi - lo)), and
        posterior samples are clipped to the range (or, with ModelConfig.z_phy_space "logit", mapped into it).
      positive: the parameters are positive (the encoder's mean goes through softplus).
      param_names: names of the true parameters in a `Dataset.params` that z_P estimates, for evaluation.
      correction_index: the state components that the in-ODE neural correction f_A acts on (zero-padded to the
        state); None means all of them.
      learned_initial_state: the initial state is predicted by an encoder head instead of `initial_state(x)`.

    Raises:
      ConfigError: a z_range of the wrong size, or no `initial_state` where learned_initial_state is False.
    """

    def __init__(self, dim_z: int, state_size: int, z_range=None, positive: bool = False,
                 param_names: Sequence[str] = (), correction_index: Sequence[int] | None = None,
                 learned_initial_state: bool = False):
        self.dim_z = int(dim_z)
        self.state_size = int(state_size)
        self.z_range = None if z_range is None else (np.asarray(z_range[0], np.float32),
                                                      np.asarray(z_range[1], np.float32))
        if self.z_range is not None and self.z_range[0].shape != (self.dim_z,):
            raise ConfigError(f"{type(self).__name__}: z_range must give {self.dim_z} lower and upper bounds")
        self.positive = positive
        self.param_names = tuple(param_names)
        self.correction_index = tuple(range(state_size)) if correction_index is None else tuple(correction_index)
        self.learned_initial_state = learned_initial_state
        if not learned_initial_state and type(self).initial_state is PhysicsModel.initial_state:
            raise ConfigError(f"{type(self).__name__} must implement initial_state(x), or pass "
                              f"learned_initial_state=True to have an encoder head predict it")

    # --- to implement -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def vector_field(self, params: Params, t: Float[Array, ""] | float, state: Float[Array, "S"],
                     z: Float[Array, "dim_z"]) -> Float[Array, "S"]:
        """f_P(t, state; z): the known physics' time derivative of the state."""

    @abc.abstractmethod
    def observe(self, params: Params, state: Float[Array, "S"]) -> Float[Array, "C"]:
        """The observed channels of one state."""

    def initial_state(self, x: Float[Array, "C T"]) -> Float[Array, "S"]:
        """The initial state from one observed sequence (required unless learned_initial_state)."""
        raise NotImplementedError(f"{type(self).__name__} predicts its initial state with an encoder head")

    def init(self, key: jax.Array) -> Params:
        """Learnable parameters of the physics (e.g. a Hamiltonian network); none by default."""
        return {}

    # --- derived --------------------------------------------------------------------------------------------
    def prior(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the Gaussian prior of z_P, each of shape (dim_z,)."""
        if self.z_range is None:
            return np.zeros(self.dim_z, np.float32), np.ones(self.dim_z, np.float32)
        lo, hi = self.z_range
        return (lo + hi) / 2, np.maximum(1e-3, 0.866 * (hi - lo)).astype(np.float32)

    def clip(self, z: Float[Array, "... dim_z"]) -> Float[Array, "... dim_z"]:
        """Clip z_P to the physical range (identity without one)."""
        return z if self.z_range is None else jnp.clip(z, self.z_range[0], self.z_range[1])

    def to_range(self, u: Float[Array, "... dim_z"]) -> Float[Array, "... dim_z"]:
        """lo + (hi - lo) sigmoid(u): an unconstrained u (..., dim_z) mapped into the physical range, for a model
        whose z_P lives in logit space (ModelConfig.z_phy_space). Needs a z_range."""
        if self.z_range is None:
            raise ConfigError(f"{type(self).__name__} has no physical range (z_range) to map z_P into")
        lo, hi = self.z_range
        return lo + (hi - lo) * jax.nn.sigmoid(u)

    def sample_augmentation(self, key: jax.Array, n: int) -> Float[Array, "n dim_z"]:
        """n draws (n, dim_z) of z~_P for physics data augmentation (R_DA2): uniform over the physical range, else
        from the prior. The loss calls it once per sequence (n = 1, that sequence's key)."""
        if self.z_range is None:
            return jax.random.normal(key, (n, self.dim_z))
        return jax.random.uniform(key, (n, self.dim_z), minval=self.z_range[0], maxval=self.z_range[1])


HalfField = Callable[[Any, jax.Array], jax.Array]  # (t, one half of the state (S/2,)) -> its partner's derivative


class SeparablePhysicsModel(PhysicsModel):
    """A physics model whose field splits as d(first half)/dt = g(t, second half), d(second half)/dt =
    h(t, first half) (position and velocity, or q and p of H = K(p) + V(q)): the symplectic semi-implicit Euler solver
    integrates it (SolverConfig("semi_implicit_euler")). `vector_field` must equal the concatenation of g and h."""

    @abc.abstractmethod
    def separable_fields(self, params: Params, z: Float[Array, "dim_z"]) -> tuple[HalfField, HalfField]:
        """(g, h): g(t, second half) is the first half's derivative, h(t, first half) the second half's."""


class NoPhysics(PhysicsModel):
    """The state, initial state and observation of another model with f_P = 0: for the NN-only and NN + solver
    baselines, where the state evolves by the neural correction alone (or not at all)."""

    def __init__(self, physics: PhysicsModel):
        super().__init__(dim_z=0, state_size=physics.state_size, learned_initial_state=physics.learned_initial_state)
        self.base = physics

    def vector_field(self, params, t, state, z):
        return jnp.zeros_like(state)

    def observe(self, params, state):
        return self.base.observe(params, state)

    def initial_state(self, x):
        return self.base.initial_state(x)

    def init(self, key):
        return self.base.init(key)
