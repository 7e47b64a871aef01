"""Small models and data shared by the tests (kept small so the suite stays fast on 2 cores), and pytree
comparisons."""

import jax
import numpy as np

from jaxphysvae.config import Config
from jaxphysvae.data import Dataset, pendulum, raw
from jaxphysvae.presets import TOY_WIDTHS as SMALL


# `--set` arguments that make a preset's configuration equal to `small_config()` (only hyper-parameters and epochs
# differ, which are data or loop counts), on generated pendulum splits of the shapes of `pendulum_splits()`: command
# line tests then run the programs the other tests have compiled.
CLI_SMALL = [arg for key, value in (
    ("feat_hidden", "[16]"), ("feat_dim", "16"), ("unmixer_hidden", "[16]"), ("correction_hidden", "[8]"),
    ("residual_hidden", "[16]"), ("init_hidden", "[16]"), ("hamiltonian_hidden", "[16]"), ("head_hidden", "[]"),
    ("batch_size", "8"), ("eval_batch_size", "16"), ("n_train", "32"), ("n_valid", "16"), ("n_test", "16"))
    for arg in ("--set", f"{key}={value}")]


def small_config(**changes) -> Config:
    """The pendulum phys-VAE architecture at toy width."""
    return Config(**{**SMALL, "dim_z_aux1": 1, "dim_z_aux2": 2, "unmixer": "residual", "batch_size": 8,
                     "eval_batch_size": 16, **changes})


def augmented_step_setup(**hparams):
    """What a test of a training-batch augmentation needs: a small pendulum model, its compiled functions (with
    hyper-parameters alpha 1e-2, beta 0.1, gamma 1e-3, x_lnvar -4 and `hparams`), an initial state, a batch of 8
    training pendulums whose last row is masked, and a key. Returns (config, model, fns, hp, state, x, mask, key)."""
    import jax.numpy as jnp

    from jaxphysvae.config import HParams
    from jaxphysvae.model import PhysVAE
    from jaxphysvae.train import make_functions
    config = small_config()
    model = PhysVAE(config, 1, 50, 0.05)
    fns = make_functions(model, config)
    hp = HParams.create(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0, **hparams)
    state = fns.init(jax.random.key(0), hp)
    x = jnp.asarray(pendulum_splits()["train"].x[:8])
    mask = jnp.ones(8, bool).at[7].set(False)
    return config, model, fns, hp, state, x, mask, jax.random.key(3)


def pendulum_splits(n=(32, 16, 16), seed=0, **ranges) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for split, size in zip(("train", "valid", "test"), n):
        a = pendulum.generate(size, rng, ranges=ranges or None)
        out[split] = Dataset("pendulum", split, a["x"], pendulum.DT, ("theta",),
                             params={k: a[k] for k in pendulum.PARAMS})
    return out


def _paired_leaves(actual, expected):
    """The leaves of two pytrees side by side, after checking that the trees have the same structure (zipping the
    leaves of different trees would compare a prefix and pass)."""
    structure_a, structure_e = jax.tree.structure(actual), jax.tree.structure(expected)
    assert structure_a == structure_e, f"pytree structures differ: {structure_a} != {structure_e}"
    return zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(expected))


def assert_trees_close(actual, expected, **tolerances):
    """np.testing.assert_allclose on every pair of leaves of two pytrees of the same structure (the failing leaf's
    path in the message). tolerances: rtol, atol."""
    for (path, a), e in _paired_leaves(actual, expected):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), err_msg=jax.tree_util.keystr(path), **tolerances)


def assert_trees_equal(actual, expected):
    """Bit-for-bit equality of every pair of leaves of two pytrees of the same structure."""
    for (path, a), e in _paired_leaves(actual, expected):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e), err_msg=jax.tree_util.keystr(path))


def fake_strides(subjects=6, per_subject=8, seed=0) -> raw.Strides:
    """Smooth gait-like curves (N, 3, 101) in radians: each subject's own amplitude and phase, plus stride noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, 101)
    x, subject = [], []
    for s in range(subjects):
        amplitude, phase = rng.uniform(0.2, 0.8, 3), rng.uniform(0, np.pi, 3)
        for _ in range(per_subject):
            x.append(amplitude[:, None] * np.sin(t[None] + phase[:, None]) + 0.01 * rng.standard_normal((3, 101)))
            subject.append(3 * s + 1)  # subject numbers need not be consecutive
    covariates = {"subject": np.array(subject, np.float64), "speed": rng.uniform(0.8, 1.4, len(x))}
    return raw.Strides(np.array(x), covariates, "fake")
