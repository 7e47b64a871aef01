"""A user's physics through runs, the command line and inference (jaxphysvae.physics.user, jaxphysvae.predict),
on the worked example's damped oscillator (experiments/oscillator.py)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import oscillator
from jaxphysvae.cli import main
from jaxphysvae.config import Config
from jaxphysvae.errors import ConfigError, DataError
from jaxphysvae.fit import fit, load_run
from jaxphysvae.physics import load_physics
from jaxphysvae.physics.user import check_spec, describe, differences
from jaxphysvae.predict import predict
from tests.helpers import CLI_SMALL

SPRING = "experiments.oscillator:Spring"
SIZES = {"n_train": 24, "n_valid": 8, "n_test": 8}


class StifferSpring(oscillator.Spring):
    def __init__(self, stiffness=2.0):
        super().__init__()
        self.stiffness = stiffness


def spring_factory():
    return oscillator.Spring()


@pytest.fixture(scope="module")
def oscillator_run(tmp_path_factory):
    """A run trained by the command line on a data file with the oscillator's Spring given by its import path."""
    root = tmp_path_factory.mktemp("oscillator")
    data = oscillator.generate(40, seed=0)
    np.savez(root / "osc.npz", x=data["x"], dt=oscillator.DT, param_k=data["k"])
    pairs = zip(CLI_SMALL[::2], CLI_SMALL[1::2])
    small = [a for flag, value in pairs if not value.startswith("n_") for a in (flag, value)]
    args = ["train", "--preset", "pendulum-phys-vae", "--data", str(root / "osc.npz"), "--physics", SPRING,
            "--epochs", "2", "--out", str(root / "run"), "--no-progress", *small,
            *[a for k, v in SIZES.items() for a in ("--set", f"{k}={v}")]]
    assert main(args) == 0
    return root


def test_import_paths_name_a_class_an_instance_or_a_factory():
    assert type(load_physics(SPRING)) is oscillator.Spring
    assert type(load_physics("tests.test_user_physics:spring_factory")) is oscillator.Spring
    assert type(load_physics("tests.test_user_physics:StifferSpring")) is StifferSpring
    for spec, message in (("no_such_module_x:Spring", "cannot import module 'no_such_module_x'"),
                          ("experiments.oscillator:Sprung", "has no attribute 'Sprung'"),
                          ("experiments.oscillator:generate", "calling generate with no arguments failed"),
                          ("experiments.oscillator:k_scores", "calling k_scores"),
                          ("tests.test_user_physics:SIZES", "gave a dict, not a jaxphysvae PhysicsModel")):
        with pytest.raises(ConfigError, match=message):
            load_physics(spec)
    with pytest.raises(ConfigError, match="unknown physics 'spring'"):
        check_spec("spring")
    with pytest.raises(ConfigError, match="unknown physics"):
        Config(physics="my module:Spring")


def test_description_names_what_differs():
    recorded = describe(StifferSpring(2.0))
    assert recorded["class"] == "tests.test_user_physics:StifferSpring"
    assert recorded["attributes"]["stiffness"] == 2.0 and recorded["attributes"]["z_range"] == [[1.0], [4.0]]
    assert differences(recorded, StifferSpring(2.0)) == []
    assert differences(recorded, StifferSpring(3.0)) == ["stiffness = 3.0 (recorded: 2.0)"]
    assert differences(recorded, oscillator.Spring())[0].startswith("class experiments.oscillator:Spring")
    # numpy scalars are recorded by value (a float32 stiffness that changes is caught)
    as_numpy = describe(StifferSpring(np.float32(2.5)))
    assert as_numpy["attributes"]["stiffness"] == 2.5 and isinstance(as_numpy["attributes"]["stiffness"], float)
    assert differences(as_numpy, StifferSpring(np.float32(3.5))) == ["stiffness = 3.5 (recorded: 2.5)"]


def test_cli_run_records_and_rebuilds_the_physics(oscillator_run, capsys):
    record = json.loads((oscillator_run / "run" / "config.json").read_text())
    assert record["config"]["physics"] == SPRING and record["config"]["dataset"].endswith("osc.npz")
    assert record["physics"]["class"] == SPRING
    summary = json.loads((oscillator_run / "run" / "summary.json").read_text())
    assert {"k_mae", "k_rel_err"} <= set(summary["test"])
    config, _, model, _, params, splits, _ = load_run(oscillator_run / "run")
    assert isinstance(model.physics, oscillator.Spring) and splits["test"].num_sequences == 8
    with pytest.raises(ConfigError, match="physics model differs .* class tests.test_user_physics:StifferSpring"):
        load_run(oscillator_run / "run", physics=StifferSpring())
    capsys.readouterr()
    assert main(["predict", str(oscillator_run / "run"), "--samples", "3", "--horizon", "60"]) == 0
    assert "k: mean" in capsys.readouterr().out
    written = np.load(oscillator_run / "run" / "predict_test.npz")
    mine = predict(model, params, splits["test"].x, samples=3, key=jax.random.key(0), horizon=60)
    for key in ("x_PAB", "x_P_long", "k", "k_std", "z_aux2_samples"):
        np.testing.assert_array_equal(written[key], mine[key])
    np.testing.assert_array_equal(written["true_k"], splits["test"].params["k"])
    assert main(["predict", str(oscillator_run / "run"), "--data", str(oscillator_run / "osc.npz"),
                 "--out", str(oscillator_run / "all.npz")]) == 0
    assert np.load(oscillator_run / "all.npz")["x_PAB"].shape == (40, 1, 50)
    assert main(["predict", str(oscillator_run / "run"), "--out", str(oscillator_run / "p.json")]) == 2
    assert "ending in .npz" in capsys.readouterr().err


def test_predict_values_recomputed(oscillator_run):
    _, _, model, _, params, splits, _ = load_run(oscillator_run / "run")
    x = splits["test"].x
    key = jax.random.key(7)
    out = predict(model, params, x, samples=4, key=key, batch_size=3, horizon=70)
    # the posterior mean's reconstructions, from the model's parts directly
    post = model.encode(params, jnp.asarray(x))
    z, _ = model.latents(params, post, None)
    rec = model.decode(params, z, post.s0)
    np.testing.assert_allclose(out["x_PAB"], rec.x_PAB, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["x_PA"], rec.x_PA, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["k"], z.phy[:, 0], rtol=1e-6)
    # sample s of sequence i uses fold_in(split(key, S)[s], i), whatever the batching
    keys = jax.random.split(key, 4)
    draws = [model.latents(params, post, jax.vmap(lambda i: jax.random.fold_in(k, i))(jnp.arange(8)))[0].phy
             for k in keys]
    np.testing.assert_allclose(out["z_phy_samples"], np.stack(draws), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["k_std"], np.stack(draws)[..., 0].std(0), rtol=1e-4, atol=1e-7)
    # the long horizon starts as the data window (the same Euler steps) and goes on
    np.testing.assert_allclose(out["x_P_long"][..., :50], out["x_P"], rtol=1e-5, atol=1e-6)
    assert out["x_P_long"].shape == (8, 1, 70) and out["t_long"][-1] == pytest.approx(6.9)
    # counterfactual parameters: the physics part is the simulation with them
    doubled = 2 * out["z_phy_mean"]
    cf = predict(model, params, x, z_phy=doubled)
    np.testing.assert_allclose(cf["x_P"], model.simulate(params, jnp.asarray(doubled), post.s0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(cf["k"], out["k"])  # the inferred values are still reported
    for kwargs, error, message in ((dict(horizon=10), ConfigError, r"horizon must be an integer >= 50 \(time steps"),
                                   (dict(z_phy=np.ones((3, 1))), ConfigError, r"z_phy must have shape \(8, 1\)"),
                                   (dict(samples=-1), ConfigError, "samples must be an integer >= 0, got -1")):
        with pytest.raises(error, match=message):
            predict(model, params, x, **kwargs)
    with pytest.raises(DataError, match="expected 50 time points"):
        predict(model, params, x[..., :40])


def test_fit_with_a_physics_object_names_its_class(oscillator_run, tmp_path):
    splits = load_run(oscillator_run / "run")[5]
    config = Config.from_json(json.loads((oscillator_run / "run" / "config.json").read_text())["config"])
    config = config.replace(physics="pendulum", epochs=1)
    summary = fit(config, _hparams(), tmp_path / "run", physics=oscillator.Spring(), splits=splits, progress=False)
    assert summary["status"] == "completed"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["physics"] == SPRING
    other = oscillator.Spring()
    other.param_names = ("stiffness",)
    differs = r"physics model differs .* param_names = \['stiffness'\] \(recorded: \['k'\]\)"
    with pytest.raises(ConfigError, match=differs):
        fit(config.replace(epochs=2), _hparams(), tmp_path / "run", physics=other, splits=splits, resume=True,
            progress=False)
    summary = fit(config.replace(epochs=2), _hparams(), tmp_path / "run", physics=oscillator.Spring(),
                  splits=splits, resume=True, progress=False)
    assert summary["epochs_run"] == 2


def _hparams():
    from jaxphysvae.config import HParams
    return HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3)
