"""The on-disk program cache (jaxphysvae.programs): a repeated run reads its traced programs back instead of tracing
the model, gets the same numbers, and never runs a stale program."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae import programs
from jaxphysvae.config import HParams
from jaxphysvae.model import PhysVAE
from jaxphysvae.physics import Pendulum
from jaxphysvae.train import make_functions
from tests.helpers import assert_trees_equal, pendulum_splits, small_config

HP = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0)


@pytest.fixture
def cache_dir(tmp_path):
    before = programs.directory()
    programs.enable(tmp_path / "programs")
    yield tmp_path / "programs"
    programs.enable(before)


def _run(config, x, valid):
    """init, one training epoch and an evaluation batch: every program a run uses."""
    fns = make_functions(PhysVAE(config, 1, 50, 0.05), config)
    state = fns.init(jax.random.key(0), HP)
    state, metrics = fns.train_epoch(state, x, jax.random.key(1), HP)
    index = jnp.arange(valid.shape[0])
    errors = fns.evaluate_batch(state.params, valid, index, jnp.ones(valid.shape[0], bool), jax.random.key(2), HP,
                                0, "none", jnp.float32(0.0))
    return jax.device_get((state, metrics, errors))


def _data():
    splits = pendulum_splits()
    return jnp.asarray(splits["train"].x), jnp.asarray(splits["valid"].x)


def test_a_stored_program_is_read_back_without_tracing_and_gives_the_same_numbers(cache_dir, monkeypatch):
    x, valid = _data()
    programs.enable(None)
    plain = _run(small_config(), x, valid)
    programs.enable(cache_dir)
    first = _run(small_config(), x, valid)  # traced, exported and stored
    assert sorted(p.name.split("-")[0] for p in cache_dir.iterdir()) == ["evaluate_batch", "init", "train_epoch"]

    def no_tracing(*args, **kwargs):
        raise AssertionError("the model was traced again")

    monkeypatch.setattr(PhysVAE, "sequence_losses", no_tracing)
    monkeypatch.setattr(PhysVAE, "encode", no_tracing)
    monkeypatch.setattr(PhysVAE, "init", no_tracing)
    second = _run(small_config(), x, valid)  # new functions, as in a new process: read from disk
    assert_trees_equal(second, first)
    assert_trees_equal(first, plain)


def test_a_models_identity_names_its_configuration_and_data():
    def identity(config=small_config(), dt=0.05, stats=None, physics=None):
        """The identity under which a model's compiled functions are stored."""
        return make_functions(PhysVAE(config, 1, 50, dt, data_stats=stats, physics=physics), config).identity

    base = identity()
    # what only chooses data and schedule changes no program
    assert identity(small_config(epochs=7, n_train=5, data_seed=3, eval_batch_size=4)) == base
    # grad_clip, weight_decay and flow_kl change no shape: only the identity tells their programs apart
    for changes in ({"grad_clip": 1.0}, {"weight_decay": 0.0}, {"flow_kl": "published_base_kl"},
                    {"activation": "tanh"}, {"noise": "gaussian"}):
        assert identity(small_config(**changes)) != base, changes
    assert identity(dt=0.1) != base
    stats = {k: np.ones(1, np.float32) for k in ("std", "min", "max")}
    assert identity(stats=stats) != identity(stats={**stats, "std": np.full(1, 2.0, np.float32)})
    # physics supplied by the caller: its code is not in the key, so its programs are never stored
    assert identity(physics=Pendulum()) is None


def _counting(identity="id"):
    traces = []

    def f(a, b, scale):
        traces.append(1)
        return {"y": a * b * scale}

    return programs.cached_jit(f, "f", identity, static_argnames=("scale",)), traces


ARGS = (jnp.arange(3.0), jnp.float32(2.0))


def test_a_program_is_traced_once_per_key_and_source(cache_dir, monkeypatch):
    f, traces = _counting()
    np.testing.assert_array_equal(f(*ARGS, scale=3)["y"], [0.0, 6.0, 12.0])
    g, traces_g = _counting()  # a new process, as far as the in-memory state goes
    np.testing.assert_array_equal(g(*ARGS, scale=3)["y"], [0.0, 6.0, 12.0])
    assert (len(traces), len(traces_g)) == (1, 0)
    np.testing.assert_array_equal(g(*ARGS, scale=4)["y"], [0.0, 8.0, 16.0])  # static values are in the key
    np.testing.assert_array_equal(g(jnp.arange(4.0), ARGS[1], scale=3)["y"], [0.0, 6.0, 12.0, 18.0])  # shapes too
    other, traces_other = _counting("another identity")
    other(*ARGS, scale=3)
    monkeypatch.setattr(programs, "source_digest", lambda: "edited source")
    edited, traces_edited = _counting()
    edited(*ARGS, scale=3)
    assert (len(traces_g), len(traces_other), len(traces_edited)) == (2, 1, 1)
    assert len(list(cache_dir.iterdir())) == 5


def test_a_corrupt_program_is_traced_again_with_a_warning(cache_dir):
    f, _ = _counting()
    f(*ARGS, scale=3)
    (path,) = cache_dir.iterdir()
    path.write_bytes(path.read_bytes()[:100])
    g, traces = _counting()
    with pytest.warns(RuntimeWarning, match="unreadable cached program"):
        np.testing.assert_array_equal(g(*ARGS, scale=3)["y"], [0.0, 6.0, 12.0])
    assert len(traces) == 1 and path.stat().st_size > 1000  # replaced by a good program
    h, traces = _counting()
    h(*ARGS, scale=3)
    assert not traces


def test_what_the_cache_cannot_vouch_for_goes_through_plain_jit(cache_dir):
    f, traces = _counting(identity=None)
    f(*ARGS, scale=3)
    assert not cache_dir.exists()
    f, traces = _counting()
    # inside a user's own jit or vmap the arguments are tracers, and Python scalars have no fixed type: the plain
    # function is traced into the caller's program
    np.testing.assert_array_equal(jax.jit(lambda a: f(a, ARGS[1], scale=3)["y"])(ARGS[0]), [0.0, 6.0, 12.0])
    np.testing.assert_array_equal(jax.vmap(lambda a: f(a, ARGS[1], scale=3)["y"])(ARGS[0]), [0.0, 6.0, 12.0])
    np.testing.assert_array_equal(f(ARGS[0], 2.0, scale=3)["y"], [0.0, 6.0, 12.0])
    assert not cache_dir.exists()
