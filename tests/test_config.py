"""Config's fields are grouped once, and the groups decide what a compiled program depends on."""

import dataclasses

from jaxphysvae.config import FIELD_GROUPS, RUN_ONLY, Config
from jaxphysvae.model import PhysVAE
from tests.helpers import small_config


def test_every_field_is_in_exactly_one_group():
    placed = [name for names in FIELD_GROUPS.values() for name in names]
    assert sorted(placed) == sorted(f.name for f in dataclasses.fields(Config))  # none missing, none twice


def test_only_data_and_schedule_fields_leave_the_model_identity_unchanged():
    base = small_config()
    identity = PhysVAE(base, 1, 50, 0.05).identity()
    changed = {"n_train": 7, "epochs": 3, "rollbacks": 0, "eval_batch_size": 5, "data_seed": 4,
               "batch_size": 4, "grad_clip": 1.0, "substeps": 2, "activation": "tanh"}
    for name, value in changed.items():
        same = PhysVAE(base.replace(**{name: value}), 1, 50, 0.05).identity() == identity
        assert same == (name in RUN_ONLY), name
