"""Config is four parts that validate themselves, addressed by flat names; the parts decide what is compiled."""

import json
import re

import pytest

from jaxphysvae.config import (FIELD_GROUPS, FIELDS, RUN_ONLY, Config, DataConfig, ModelConfig, OptimisationConfig,
                               HParams, ScheduleConfig, SolverConfig)
from jaxphysvae.errors import ConfigError
from jaxphysvae.model import PhysVAE
from jaxphysvae.train import make_functions
from tests.helpers import small_config


def test_every_flat_name_belongs_to_one_part_and_round_trips():
    placed = [name for names in FIELD_GROUPS.values() for name in names]
    assert len(placed) == len(set(placed)) == len(FIELDS)
    config = small_config(dataset="advdif", n_train=7, epochs=3, batch_size=4, solver="tsit5", rtol=1e-3,
                          lnvar_min=-6.0, grad_clip_norm=50.0)
    flat = config.to_json()
    assert list(flat) == placed  # every flat name, in part order
    assert flat["solver"] == "tsit5" and flat["rtol"] == 1e-3 and flat["epochs"] == 3 and flat["n_train"] == 7
    assert config.data == DataConfig(dataset="advdif", n_train=7)
    assert config.model.solver == SolverConfig("tsit5", rtol=1e-3)
    assert config.model.lnvar_min == -6.0 and config.optimisation.grad_clip_norm == 50.0
    assert config.schedule == ScheduleConfig(epochs=3, eval_batch_size=16)
    assert Config.from_json(json.loads(json.dumps(flat))) == config  # config.json's lists become tuples again
    assert Config(**flat) == config
    assert config.replace(epochs=9).schedule.epochs == 9 and config.replace(epochs=9).model == config.model
    assert Config(model=config.model, optimisation=config.optimisation).model is config.model


@pytest.mark.parametrize("build, message", [
    (lambda: DataConfig(data_dt=0.1), "data_dt .* needs a data file"),
    (lambda: DataConfig(n_valid=0), "n_valid must be a positive integer"),
    (lambda: ModelConfig(flow_margin=1.0), r"flow_margin must lie in \[0, 1\)"),
    (lambda: ModelConfig(unmixer="residual", use_physics=False), "an unmixer needs physics"),
    (lambda: ModelConfig(solver="euler"), "ModelConfig.solver must be a SolverConfig"),
    (lambda: SolverConfig("rk4"), "unknown solver 'rk4'"),
    (lambda: OptimisationConfig(batch_size=10, batch_shards=3), "batch_size 10 must be a multiple of batch_shards 3"),
    (lambda: ScheduleConfig(rollbacks=-1), "rollbacks must be an integer >= 0"),
    (lambda: ScheduleConfig(epochs=0), "epochs must be a positive integer"),
    (lambda: Config(attention_phy="batch", batch_shards=2), "'batch' attention context .* cannot be split"),
    (lambda: Config(batch_size=8, optimisation=OptimisationConfig()), "batch_size given both flat and in the "
                                                                       "optimisation part"),
    (lambda: Config(batch_sise=8), r"unknown configuration key\(s\) \['batch_sise'\]"),
    (lambda: Config(model=DataConfig()), "Config model must be a ModelConfig, got DataConfig"),
    (lambda: small_config().replace(epoch=3), r"unknown configuration key\(s\) \['epoch'\]"),
])
def test_each_part_validates_itself_and_names_the_problem(build, message):
    with pytest.raises(ConfigError, match=message):
        build()


def test_only_the_model_and_optimisation_parts_change_the_compiled_programs():
    base = small_config()
    model_identity = PhysVAE(base, 1, 50, 0.05).identity()
    program_identity = make_functions(PhysVAE(base, 1, 50, 0.05), base).identity
    changed = {"n_train": 7, "epochs": 3, "rollbacks": 0, "eval_batch_size": 5, "data_seed": 4,
               "batch_size": 4, "grad_clip": 1.0, "substeps": 2, "activation": "tanh"}
    for name, value in changed.items():
        config = base.replace(**{name: value})
        model = PhysVAE(config, 1, 50, 0.05)
        assert (model.identity() == model_identity) == (FIELDS[name] != "model"), name
        assert (make_functions(model, config).identity == program_identity) == (name in RUN_ONLY), name


@pytest.mark.parametrize("name, what", [("noise", "noise level"), ("mix", "mix (the largest partner weight"),
                                        ("lr_floor", "lr_floor (the final fraction of lr)")])
def test_fraction_hyper_parameters_must_lie_in_the_unit_interval(name, what):
    for bad in (-0.1, 1.5, [0.5, 1.2]):
        with pytest.raises(ConfigError, match=re.escape(f"{what}") + r".* must lie in \[0, 1\], got"):
            HParams.create(**{name: bad})
    for edge in (0.0, 1.0):
        assert float(getattr(HParams.create(**{name: edge}), name)) == edge
