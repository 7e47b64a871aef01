"""The physics-model interface: what a known (incomplete) ODE must provide to sit inside a phys-VAE decoder.

A physics model describes one sequence; the library vmaps it over the batch. To plug in your own system, subclass
`PhysicsModel` and implement `vector_field`, `observe` and, unless the encoder predicts it, `initial_state`:

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

Conventions: `state` has shape (state_size,), `z` (the physics latent z_P) has shape (dim_z,), time `t` is a scalar
in the data's time unit, and `params` is the pytree returned by `init` (learnable parts of the physics, e.g. the
network of a learned Hamiltonian; empty for fully known physics).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxphysvae.errors import ConfigError

Params = Any


class PhysicsModel:
    """Base class of physics models.

    Args:
      dim_z: size of z_P (0 for none).
      state_size: size S of the ODE state.
      z_range: ((lo_1, ...), (hi_1, ...)) physical range of z_P, or None when z_P has no physical units (its prior
        is then N(0, I)). With a range the prior is N(m, s^2), m = (lo + hi) / 2, s = max(1e-3, 0.866 (hi - lo)), and
        posterior samples are clipped to the range.
      positive: the parameters are positive (the encoder's mean goes through softplus).
      param_names: names of the true parameters in a `Dataset.params` that z_P estimates, for evaluation.
      correction_index: the state components that the in-ODE neural correction f_A acts on (zero-padded to the
        state); None means all of them.
      learned_initial_state: the initial state is predicted by an encoder head instead of `initial_state(x)`.
      separable: the field splits as d(first half)/dt = g(second half), d(second half)/dt = h(first half), which
        allows the symplectic semi-implicit Euler solver.
    """

    def __init__(self, dim_z: int, state_size: int, z_range=None, positive: bool = False,
                 param_names: Sequence[str] = (), correction_index: Sequence[int] | None = None,
                 learned_initial_state: bool = False, separable: bool = False):
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
        self.separable = separable

    # --- to implement -------------------------------------------------------------------------------------------
    def vector_field(self, params: Params, t, state: jax.Array, z: jax.Array) -> jax.Array:
        """f_P(t, state; z): the known physics' time derivative of the state, shape (S,)."""
        raise NotImplementedError

    def observe(self, params: Params, state: jax.Array) -> jax.Array:
        """The observed channels of one state, shape (C,)."""
        raise NotImplementedError

    def initial_state(self, x: jax.Array) -> jax.Array:
        """The initial state (S,) from one observed sequence x of shape (C, T) (unless learned_initial_state)."""
        raise NotImplementedError(f"{type(self).__name__} predicts its initial state with an encoder head")

    def init(self, key: jax.Array) -> Params:
        """Learnable parameters of the physics (e.g. a Hamiltonian network); none by default."""
        return {}

    def separable_fields(self, params: Params, z: jax.Array):
        """For separable models: (g, h) with d(first half)/dt = g(t, second half) and
        d(second half)/dt = h(t, first half)."""
        raise ConfigError(f"{type(self).__name__} is not separable; the symplectic solver cannot be used")

    # --- derived --------------------------------------------------------------------------------------------
    def prior(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the Gaussian prior of z_P, each of shape (dim_z,)."""
        if self.z_range is None:
            return np.zeros(self.dim_z, np.float32), np.ones(self.dim_z, np.float32)
        lo, hi = self.z_range
        return (lo + hi) / 2, np.maximum(1e-3, 0.866 * (hi - lo)).astype(np.float32)

    def clip(self, z: jax.Array) -> jax.Array:
        """Clip z_P to the physical range (identity without one)."""
        return z if self.z_range is None else jnp.clip(z, self.z_range[0], self.z_range[1])

    def sample_augmentation(self, key: jax.Array, n: int) -> jax.Array:
        """n draws (n, dim_z) of z~_P for physics data augmentation (R_DA2): uniform over the physical range, else
        from the prior. The loss calls it once per sequence (n = 1, that sequence's key)."""
        if self.z_range is None:
            return jax.random.normal(key, (n, self.dim_z))
        return jax.random.uniform(key, (n, self.dim_z), minval=self.z_range[0], maxval=self.z_range[1])


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
