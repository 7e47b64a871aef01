import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae import checkpoint
from jaxphysvae.config import HParams, stack
from jaxphysvae.data import Dataset
from jaxphysvae.errors import ConfigError, DataError
from jaxphysvae.fit import fit
from jaxphysvae.model import PhysVAE
from jaxphysvae.train import (epoch_batches, evaluate, learning_rate, make_functions, physics_errors,
                              with_parameter_average)
from tests.helpers import assert_trees_close, pendulum_splits, small_config

HP = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0)


@pytest.fixture(scope="module")
def setup():
    config = small_config()
    splits = pendulum_splits()
    model = PhysVAE(config, 1, 50, 0.05)
    return config, splits, model, make_functions(model, config)


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
        assert_trees_close(jax.tree.map(lambda a: a[i], vstate.params), single[i].params, rtol=2e-4, atol=2e-6)
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
    config = config.replace(epochs=30, rollbacks=2, rollback_lr_factor=1.0)  # each retry diverges again
    summary = fit(config, HParams.create(lr=1e8, x_lnvar=-4.0), tmp_path, progress=False,
                  splits=splits)  # steps of ~1e8 overflow within an epoch or two
    assert summary["status"] == "diverged" and "diverged at epoch" in summary["message"]
    assert "after 2 rollback(s)" in summary["message"] and len(summary["rollbacks"]) == 2
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["rollback"]["lr_scale"] for r in rows if "rollback" in r] == [1.0, 1.0]
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
    fns = make_functions(model, config)
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


def test_an_epoch_takes_every_sequence_once_with_the_remainder_in_a_masked_batch(setup):
    config, splits, model, fns = setup
    order, mask, keys = epoch_batches(jax.random.key(3), 30, 8)
    order, mask = np.asarray(order), np.asarray(mask)
    assert order.shape == mask.shape == (4, 8) and keys.shape == (4,)
    assert sorted(order[mask].tolist()) == list(range(30)) and mask.sum(1).tolist() == [8, 8, 8, 6]
    x = jnp.asarray(splits["train"].x[:30])
    start = fns.init(jax.random.key(0), HP)
    state, metrics = fns.train_epoch(start, x, jax.random.key(3), HP)
    stepped, losses = start, []
    for i in range(4):
        stepped, m = fns.train_step(stepped, (x[order[i]], jnp.asarray(mask[i])), keys[i], HP)
        losses.append(float(m["loss"]))
    assert_trees_close(state.params, stepped.params, rtol=1e-5, atol=1e-7)
    assert int(state.step) == 4 and float(metrics["steps"]) == 4.0
    assert float(metrics["loss"]) == pytest.approx(np.dot(losses, [8, 8, 8, 6]) / 30, rel=1e-5)


def test_a_step_applies_the_gradient_of_batch_loss_and_masked_rows_count_for_nothing(setup):
    """Adam's first step moves each parameter by lr g / (|g| + eps), g the clipped gradient plus weight decay."""
    config, splits, model, fns = setup
    state = fns.init(jax.random.key(0), HP)
    x = jnp.asarray(splits["train"].x[:8])
    mask, key = jnp.arange(8) < 6, jax.random.key(5)
    grads = jax.grad(lambda p: model.batch_loss(p, x, mask, jax.random.split(key, 8), HP)[0])(state.params)
    garbage = x.at[6:].set(x[:2, :, ::-1] * 2)  # the masked rows' values must not matter
    new, metrics = fns.train_step(state, (garbage, mask), key, HP)
    g = jax.tree.map(lambda g, p: np.clip(np.asarray(g, np.float64), -5, 5) + 1e-6 * np.asarray(p), grads,
                     state.params)
    expected = jax.tree.map(lambda p, g: np.asarray(p) - 1e-3 * g / (np.abs(g) + 1e-3), state.params, g)
    assert_trees_close(new.params, expected, rtol=1e-5, atol=1e-8)
    norm = np.sqrt(sum(np.sum(np.asarray(v, np.float64) ** 2) for v in jax.tree.leaves(grads)))
    assert float(metrics["grad_norm"]) == pytest.approx(norm, rel=1e-5)
    loss, _ = model.batch_loss(state.params, x[:6], jnp.ones(6, bool), jax.random.split(key, 8)[:6], HP)
    assert float(metrics["loss"]) == pytest.approx(float(loss), rel=1e-6)


def test_learning_rate_schedule_values_and_the_step_follows_it(setup):
    hp = HParams.create(lr=1e-2, warmup_steps=4, decay_steps=10, lr_floor=0.1)
    expected = {0: 2.5e-3, 1: 5e-3, 3: 1e-2, 4: 1e-2, 9: 1e-2 * (0.1 + 0.9 * 0.5), 14: 1e-3, 40: 1e-3}
    for step, lr in expected.items():
        assert float(learning_rate(jnp.int32(step), hp)) == pytest.approx(lr, rel=1e-6)
    assert float(learning_rate(jnp.int32(10_000), HParams.create(lr=1e-2))) == pytest.approx(1e-2)  # constant
    config, splits, model, fns = setup
    state = fns.init(jax.random.key(0), HP)
    batch = (jnp.asarray(splits["train"].x[:8]), jnp.ones(8, bool))
    plain, _ = fns.train_step(state, batch, jax.random.key(1), HP._replace(lr=jnp.float32(1e-2)))
    warm, metrics = fns.train_step(state, batch, jax.random.key(1), HParams.create(
        **{**HP.to_json(), "lr": 1e-2, "warmup_steps": 4, "decay_steps": 10, "lr_floor": 0.1}))
    assert float(metrics["lr"]) == pytest.approx(2.5e-3)
    moved = lambda s: jax.tree.map(lambda a, b: np.asarray(a) - np.asarray(b), s.params, state.params)
    # float32 p + d - p
    assert_trees_close(moved(warm), jax.tree.map(lambda d: d / 4, moved(plain)), rtol=1e-4, atol=1e-6)


def test_a_non_finite_epoch_rolls_back_to_the_best_state_with_a_lower_rate_and_resumes(tmp_path, setup):
    """lr 1e8 overflows in the first epoch; the rollback restores the initial state (epoch 0, the best so far) with
    lr 1e8 * 1e-11 = 1e-3, and the run from there equals epochs 2..N trained at 1e-3 from the initial state."""
    config, splits, model, fns = setup
    config = config.replace(epochs=3, rollbacks=1, rollback_lr_factor=1e-11)
    hp = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0, lr=1e8)
    summary = fit(config, hp, tmp_path, seed=2, progress=False, splits=splits)
    assert summary["status"] == "completed" and summary["lr_scale"] == pytest.approx(1e-11)
    [event] = summary["rollbacks"]
    assert event["epoch"] == 1 and event["to_epoch"] == 0
    summary = fit(config.replace(epochs=5), hp, tmp_path, seed=2, progress=False, splits=splits, resume=True)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5] and "rollback" in rows[0]
    assert all(r["train_lr"] == pytest.approx(1e-3, rel=1e-5) for r in rows[1:])
    run_key = jax.random.key(2)
    state = fns.init(jax.random.fold_in(run_key, 0), hp)
    x = jnp.asarray(splits["train"].x)
    for epoch in range(2, 6):
        state, _ = fns.train_epoch(state, x, jax.random.fold_in(run_key, epoch), hp._replace(lr=jnp.float32(1e-3)))
    last, _ = checkpoint.load(tmp_path / "last.ckpt", state)
    assert_trees_close(last.params, state.params, rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def locomotion_step():
    """A toy locomotion phys-VAE's compiled train_step, its initial state and one batch (shared: one compilation)."""
    from jaxphysvae import presets
    config, _ = presets.get("locomotion-phys-vae")
    config = config.replace(**presets.TOY_WIDTHS, batch_size=4)
    model = PhysVAE(config, 3, 20, 0.01)
    fns = make_functions(model, config)
    hp = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0, lr=1e-2)
    state = fns.init(jax.random.key(0), hp)
    x = jax.random.normal(jax.random.key(1), (4, 3, 20)) * 0.1
    return fns, state, (x, jnp.ones(4, bool)), jax.random.key(2), hp


def test_decoder_decay_shrinks_the_decoder_alone(locomotion_step):
    """One step with hparams.decoder_decay = d against the same step without: the decoder's parameters (the learned
    Hamiltonian, the residual network) move by -lr d p more, every other parameter not at all."""
    fns, state, batch, key, hp = locomotion_step
    plain, _ = fns.train_step(state, batch, key, hp)
    decayed, _ = fns.train_step(state, batch, key, hp._replace(decoder_decay=jnp.float32(5.0)))
    assert fns.train_step.cache_size() == 1
    decoder = {"physics": state.params["physics"], "residual": state.params["nets"]["residual"]}
    moved = {"physics": decayed.params["physics"], "residual": decayed.params["nets"]["residual"]}
    without = {"physics": plain.params["physics"], "residual": plain.params["nets"]["residual"]}
    expected = jax.tree.map(lambda w, p: w - 1e-2 * 5.0 * p, without, decoder)
    assert_trees_close(moved, expected, rtol=1e-5, atol=1e-7)
    assert max(float(jnp.max(jnp.abs(p))) for p in jax.tree.leaves(decoder)) > 0.1  # the decay is visible
    others = {k: v for k, v in decayed.params["nets"].items() if k != "residual"}
    assert_trees_close(others, {k: v for k, v in plain.params["nets"].items() if k != "residual"}, rtol=0, atol=0)


def test_encoder_lr_scale_slows_the_inference_side_alone(locomotion_step):
    """One step with hparams.encoder_lr_scale = 0.25 against the same step at 1: every network but the decoder's
    (encoder, initial state, unmixer) moves by a quarter of the plain step's change (Adam's update does not depend on
    the rate), the generative side (physics parameters, residual network) exactly as in the plain step."""
    fns, state, batch, key, hp = locomotion_step
    plain, _ = fns.train_step(state, batch, key, hp)
    slow, _ = fns.train_step(state, batch, key, hp._replace(encoder_lr_scale=jnp.float32(0.25)))
    assert fns.train_step.cache_size() == 1
    nets = state.params["nets"]
    inference = [name for name in nets if name not in ("correction", "residual")]
    assert {"residual", "initial_state", "unmixer"} <= set(nets) and any(name.startswith("feat_") for name in inference)
    expected = {n: jax.tree.map(lambda p0, p1: p0 + 0.25 * (p1 - p0), nets[n], plain.params["nets"][n])
                for n in inference}
    assert_trees_close({n: slow.params["nets"][n] for n in inference}, expected, rtol=1e-5, atol=1e-7)
    moved = max(float(jnp.max(jnp.abs(p1 - p0))) for n in inference
                for p0, p1 in zip(jax.tree.leaves(nets[n]), jax.tree.leaves(plain.params["nets"][n])))
    assert moved > 1e-3  # the plain step moves the inference side visibly
    generative = lambda params: {"physics": params["physics"], "residual": params["nets"]["residual"]}
    assert_trees_close(generative(slow.params), generative(plain.params), rtol=0, atol=0)


def test_the_parameter_average_follows_every_step_and_is_the_parameters_at_decay_0(setup):
    """Three steps at ema_decay 0.9: the average is d_t avg + (1 - d_t) p_{t+1} from avg = p_0, with d_t = min(0.9,
    (1 + t) / (10 + t)) (recomputed here in float64 from the steps' parameters); the parameters themselves are those
    of the same steps at decay 0, whose average is the parameters exactly."""
    config, splits, model, fns = setup
    batch = (jnp.asarray(splits["train"].x[:8]), jnp.ones(8, bool))
    averaged = plain = fns.init(jax.random.key(0), HP)
    expected = jax.tree.map(lambda p: np.asarray(p, np.float64), plain.params)
    for t in range(3):
        averaged, _ = fns.train_step(averaged, batch, jax.random.key(t), HP._replace(ema_decay=jnp.float32(0.9)))
        plain, _ = fns.train_step(plain, batch, jax.random.key(t), HP)
        d = min(0.9, (1 + t) / (10 + t))
        expected = jax.tree.map(lambda a, p: d * a + (1 - d) * np.asarray(p, np.float64), expected, averaged.params)
    assert fns.train_step.cache_size() == 1
    assert_trees_close(averaged.params, plain.params, rtol=0, atol=0)  # the average does not feed back
    assert_trees_close(averaged.ema_params, expected, rtol=1e-5, atol=1e-7)
    assert_trees_close(plain.ema_params, plain.params, rtol=0, atol=0)
    gap = max(float(np.max(np.abs(np.asarray(a) - np.asarray(p))))
              for a, p in zip(jax.tree.leaves(averaged.ema_params), jax.tree.leaves(averaged.params)))
    assert gap > 1e-4  # the average lags the parameters visibly
    with pytest.raises(ConfigError, match="ema_decay .* must lie in \\[0, 1\\), got 1.0"):
        HParams.create(ema_decay=1.0)


def test_fit_validates_and_keeps_the_parameter_average(tmp_path, setup):
    """With ema_decay > 0 the validation error of every epoch, best.ckpt and the summary are the average's."""
    config, splits, model, fns = setup
    hp = HP._replace(ema_decay=jnp.float32(0.8), lr=jnp.float32(3e-3))
    summary = fit(config.replace(epochs=2), hp, tmp_path, progress=False, splits=splits)
    template = fns.init(jax.random.key(0), hp)
    best_state, meta = checkpoint.load(tmp_path / "best_state.ckpt", template)
    best_params, _ = checkpoint.load(tmp_path / "best.ckpt", template.params)
    assert_trees_close(best_params, best_state.ema_params, rtol=0, atol=0)
    assert not np.allclose(best_state.params["nets"]["residual"]["params"]["Dense_0"]["kernel"],
                           best_state.ema_params["nets"]["residual"]["params"]["Dense_0"]["kernel"])
    valid, _ = evaluate(fns, best_state.ema_params, splits["valid"], hp, config.schedule.eval_batch_size)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    [row] = [r for r in rows if r["epoch"] == meta["best"]["epoch"]]
    assert row["valid_sse_per_seq"] == pytest.approx(valid["sse_per_seq"], rel=1e-5)
    assert summary["valid"]["sse_per_seq"] == pytest.approx(valid["sse_per_seq"], rel=1e-5)


def test_a_state_saved_before_the_parameter_average_loads_with_its_parameters_as_the_average(tmp_path, setup):
    """A TrainState written before ema_params existed (a run's last.ckpt, or nested as in a sweep's state file)
    loads with with_parameter_average; without it the file is named as incompatible."""
    _, _, _, fns = setup
    state = fns.init(jax.random.key(0), HP)
    moved = state._replace(params=jax.tree.map(lambda p: p + 1.0, state.params))
    old = lambda s: {"params": s.params, "opt_state": s.opt_state, "step": s.step}
    checkpoint.save(tmp_path / "last.ckpt", old(moved), {"epoch": 3})
    loaded, meta = checkpoint.load(tmp_path / "last.ckpt", state, with_parameter_average)
    assert meta == {"epoch": 3}
    assert_trees_close(loaded.params, moved.params, rtol=0, atol=0)
    assert_trees_close(loaded.ema_params, moved.params, rtol=0, atol=0)
    checkpoint.save(tmp_path / "sweep.ckpt", {"state": old(moved), "best_state": old(state)}, {})
    nested, _ = checkpoint.load(tmp_path / "sweep.ckpt", {"state": state, "best_state": state},
                                with_parameter_average)
    assert_trees_close(nested["state"].ema_params, moved.params, rtol=0, atol=0)
    assert_trees_close(nested["best_state"].ema_params, state.params, rtol=0, atol=0)
    with pytest.raises(DataError, match="last.ckpt: corrupt or incompatible checkpoint"):
        checkpoint.load(tmp_path / "last.ckpt", state)
