"""Compiled programs are storable in JAX's persistent compilation cache (no host callbacks inside), and a solver
failure still surfaces, as NaN that the training loop's finiteness check reports."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxphysvae.config import HParams
from jaxphysvae.model import PhysVAE
from jaxphysvae.physics.integrate import SolverConfig, integrate
from jaxphysvae.train import as_float32, make_functions
from tests.helpers import pendulum_splits, small_config

HP = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0)


def _cache_events(run) -> list[str]:
    events = []
    listener = lambda name, **kwargs: events.append(name) if name.startswith("/jax/compilation_cache/") else None
    jax.monitoring.register_event_listener(listener)
    try:
        run()
    finally:
        jax.monitoring.unregister_event_listener(listener)
    return events


def test_a_recompiled_training_epoch_is_a_persistent_cache_hit():
    """The training epoch holds no host callback (equinox's runtime checks would put some there, and JAX never
    stores such a program), so after the in-memory caches are cleared it is loaded from disk, not compiled."""
    x = jnp.asarray(pendulum_splits()["train"].x)

    def first_epoch():
        fns = make_functions(PhysVAE(small_config(), 1, 50, 0.05), small_config())
        state = fns.init(jax.random.key(0), HP)
        assert "callback" not in fns.train_epoch.jitted.lower(state, x, jax.random.key(1), as_float32(HP)).as_text()
        jax.block_until_ready(fns.train_epoch(state, x, jax.random.key(1), HP))

    first_epoch()  # compiled (or found, if another test compiled it first) and stored
    jax.clear_caches()
    events = _cache_events(first_epoch)
    assert events.count("/jax/compilation_cache/cache_hits") >= 2  # init and the training epoch
    assert "/jax/compilation_cache/cache_misses" not in events


def test_a_failed_adaptive_solve_returns_nan_without_a_callback():
    t = np.arange(20) * 0.1
    solver = SolverConfig("tsit5", max_steps=3)  # far too few steps for the interval
    solve = jax.jit(lambda y0, a: integrate(lambda tt, y, k: -k * y, y0, t, a, solver))
    assert "callback" not in solve.lower(jnp.ones(2), jnp.float32(1.0)).as_text()
    assert bool(jnp.all(jnp.isnan(solve(jnp.ones(2), jnp.float32(1.0)))))
    ok = jax.jit(lambda y0, a: integrate(lambda tt, y, k: -k * y, y0, t, a, SolverConfig("tsit5")))
    np.testing.assert_allclose(ok(jnp.ones(2), jnp.float32(1.0))[:, 0], np.exp(-t), rtol=1e-3)
