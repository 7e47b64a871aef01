import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae import checkpoint
from jaxphysvae.config import HParams, stack
from jaxphysvae.data import Dataset
from jaxphysvae.errors import DataError
from jaxphysvae.fit import fit
from jaxphysvae.model import PhysVAE
from jaxphysvae.train import evaluate, make_functions, physics_errors
from tests.helpers import pendulum_splits, small_config

HP = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0)


@pytest.fixture(scope="module")
def setup():
    config = small_config()
    splits = pendulum_splits()
    model = PhysVAE(config, 1, 50, 0.05)
    return config, splits, model, make_functions(model)


def _close(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def test_one_compilation_for_many_steps(setup):
    config, splits, model, fns = setup
    state = fns.init(jax.random.key(0), HP)
    x = jnp.asarray(splits["train"].x)
    for i in range(4):
        state, metrics = fns.train_step(state, (x[i * 8:(i + 1) * 8], jnp.ones(8, bool)), jax.random.key(i),
                                        HParams.create(alpha=1e-2 * (i + 1), lr=1e-3 / (i + 1), x_lnvar=-4.0))
        state, _ = fns.train_epoch(state, x, jax.random.key(10 + i), HP._replace(beta=float(i)))  # Python float
    assert fns.train_step.cache_size() == 1 and fns.train_epoch.cache_size() == 1
    assert int(state.step) == 4 + 4 * 4 and np.isfinite(float(metrics["loss"]))


def test_vmap_over_two_hparams_equals_two_separate_runs(setup):
    config, splits, model, fns = setup
    hps = [HP, HParams.create(alpha=0.5, beta=0.0, gamma=0.1, lr=3e-3, x_lnvar=-2.0, kl_weight=0.5)]
    keys = [jax.random.key(1), jax.random.key(2)]
    states = [fns.init(k, h) for k, h in zip(keys, hps)]
    batch = (jnp.asarray(splits["train"].x[:8]), jnp.ones(8, bool))
    step_keys = jax.random.split(jax.random.key(3), 2)
    vstep = jax.jit(jax.vmap(fns.train_step_raw, in_axes=(0, None, 0, 0)))
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *states)
    vstate, vmetrics = stacked, None
    single = list(states)
    for _ in range(3):
        vstate, vmetrics = vstep(vstate, batch, step_keys, stack(hps))
        single = [fns.train_step(s, batch, k, h)[0] for s, k, h in zip(single, step_keys, hps)]
    for i in range(2):
        _close(jax.tree.map(lambda a: a[i], vstate.params), single[i].params, rtol=2e-4, atol=2e-6)
    assert not np.allclose(vstate.params["nets"]["residual"]["params"]["Dense_0"]["kernel"][0],
                           vstate.params["nets"]["residual"]["params"]["Dense_0"]["kernel"][1])


def test_evaluation_does_not_depend_on_batch_size_or_order(setup):
    config, splits, model, fns = setup
    params = fns.init(jax.random.key(0), HP).params
    ds = splits["test"]
    a, per_a = evaluate(fns, params, ds, HP, batch_size=16, samples=3)
    b, per_b = evaluate(fns, params, ds, HP, batch_size=5, samples=3)
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-5)
    order = np.arange(ds.num_sequences)[::-1]
    c, per_c = evaluate(fns, params, ds.subset(order), HP, batch_size=7, samples=0)
    d, per_d = evaluate(fns, params, ds, HP, batch_size=16, samples=0)
    np.testing.assert_allclose(per_c["sq_err"][::-1], per_d["sq_err"], rtol=1e-5)
    assert a["sse_per_seq"] != d["sse_per_seq"]  # samples differ from the posterior mean


def test_fit_is_deterministic_by_seed(tmp_path, setup):
    config, splits, _, _ = setup
    config = config.replace(epochs=3)
    runs = [fit(config, HP, tmp_path / name, seed=seed, progress=False, splits=splits)
            for name, seed in (("a", 0), ("b", 0), ("c", 1))]
    assert runs[0]["test"] == runs[1]["test"] and runs[0]["test"] != runs[2]["test"]
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and "valid_sse_per_seq" in rows[0]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["status"] == "completed" and set(summary["test"]) >= {"mae", "rmse", "sse_per_seq", "omega_mae"}
    assert json.loads((tmp_path / "a" / "config.json").read_text())["versions"]["jax"] == jax.__version__


def test_divergence_stops_cleanly_and_keeps_the_last_good_state(tmp_path, setup):
    config, splits, model, fns = setup
    summary = fit(config.replace(epochs=30), HParams.create(lr=1e8, x_lnvar=-4.0), tmp_path, progress=False,
                  splits=splits)  # steps of ~1e8 overflow within an epoch or two
    assert summary["status"] == "diverged" and "diverged at epoch" in summary["message"]
    template = fns.init(jax.random.key(0), HP)
    state, meta = checkpoint.load(tmp_path / "last.ckpt", template)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state.params))
    assert meta["epoch"] == summary["epochs_run"] < 30


def test_corrupt_checkpoint_is_named(tmp_path, setup):
    _, _, _, fns = setup
    (tmp_path / "x.ckpt").write_bytes(b"\x00garbage")
    template = fns.init(jax.random.key(0), HP)
    with pytest.raises(DataError, match="x.ckpt: corrupt or incompatible checkpoint"):
        checkpoint.load(tmp_path / "x.ckpt", template)
    with pytest.raises(DataError, match="checkpoint not found"):
        checkpoint.load(tmp_path / "missing.ckpt", template)


def test_physics_only_recovers_omega_on_a_free_undamped_pendulum():
    """Noise-free, unforced, undamped data; amplitudes |theta_0| >= 0.3 rad, where omega shows in the signal (at
    |theta_0| < 0.1 a 50-point window of a tiny swing hardly constrains it)."""
    rng = np.random.default_rng(0)
    from jaxphysvae.data import pendulum
    ranges = {"gamma": (0.0, 0.0), "A": (0.0, 0.0), "theta0": (0.3, 1.57)}

    def dataset(n, split):
        a = pendulum.generate(n, rng, noise_std=0.0, ranges=ranges)
        return Dataset("pendulum", split, a["x"] * rng.choice([-1, 1], (n, 1, 1)), pendulum.DT, ("theta",),
                       params={"omega": a["omega"]})

    train, test = dataset(256, "train"), dataset(128, "test")
    config = small_config(dim_z_aux1=-1, dim_z_aux2=-1, unmixer="none", feat_hidden=(64, 64), feat_dim=64,
                          batch_size=64, solver="heun", substeps=2)
    model = PhysVAE(config, 1, 50, 0.05)
    fns = make_functions(model)
    hp = HParams.create(beta=0.1, x_lnvar=-9.0, lr=3e-3)
    state = fns.init(jax.random.key(0), hp)
    x = jnp.asarray(train.x)
    for epoch in range(600):  # the learning rate is data: lowering it for the last 200 epochs recompiles nothing
        epoch_hp = hp if epoch < 400 else hp._replace(lr=jnp.float32(3e-4))
        state, _ = fns.train_epoch(state, x, jax.random.key(epoch), epoch_hp)
    _, per = evaluate(fns, state.params, test, hp, 128)
    errors = physics_errors(model, per["z_phy"], test)
    assert errors["omega_rel_err"] < 0.02  # 0.5 to 1.0 % over seeds 0-2 of data and initialisation
    assert fns.train_epoch.cache_size() == 1
