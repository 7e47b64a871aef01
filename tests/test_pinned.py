"""Pinned numbers: a few training steps of four small architectures (every encoder head, flows, both attention
contexts, the unmixers, learned and known physics, learned variance) give the losses and parameter norms recorded
below, to float32 tolerance. They were recorded before the model was split into its parts (issue 11) and guard
against any change of behaviour in a refactoring; a deliberate change of the method updates them, with its reason in
the commit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxphysvae.config import HParams
from jaxphysvae.model import PhysVAE
from jaxphysvae.train import make_functions
from tests.helpers import small_config

CASES = {
    "pendulum-phys-vae": (small_config(), (1, 50), dict(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-4.0)),
    "advdif-linear-unmixer": (small_config(physics="diffusion", observation_map=True, unmixer="linear",
                                           dim_z_aux1=2, dim_z_aux2=-1, substeps=2), (20, 30),
                              dict(alpha=1e-1, beta=1.0, gamma=1e-2, x_lnvar=-6.0)),
    "hamiltonian-attnf-seq": (small_config(physics="hamiltonian", dim_z_phy=2, dim_z_aux1=-1, dim_z_aux2=3,
                                           ppc="residual", flow_phy=2, flow_aux2=3, attention_phy="seq",
                                           attention_aux2="seq", noise="feature"), (3, 40),
                              dict(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-5.0, noise=0.1)),
    "hamiltonian-attnf-batch-learned-variance": (
        small_config(physics="hamiltonian", dim_z_phy=2, dim_z_aux1=-1, dim_z_aux2=3, ppc="residual", flow_phy=2,
                     flow_aux2=3, attention_phy="batch", attention_aux2="batch", learn_x_lnvar=True,
                     noise="gaussian", lnvar_min=-8.0, flow_margin=0.01), (3, 40),
        dict(alpha=1e-2, beta=1e-1, gamma=1e-3, x_lnvar=-5.0, noise=0.1)),
}

PINNED = {  # recorded at commit 6b7cff0: three losses, then the parameters' global norm
    'pendulum-phys-vae': [89.59989166259766, 80.8541259765625, 56.78074264526367, 15.607958324879121],
    'advdif-linear-unmixer': [70.0783920288086, 73.99095153808594, 77.94068908691406, 27.3069122473417],
    'hamiltonian-attnf-seq': [86.23542022705078, 105.28898620605469, 109.20755767822266, 26.507166316810792],
    'hamiltonian-attnf-batch-learned-variance': [105.23095703125, 97.13036346435547, 117.29193878173828,
                                                 21.211480079125806],
}


def _run(name):
    config, (c, t), hp = CASES[name]
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, c, t)) * 0.3, jnp.float32)
    stats = {"std": np.full(c, 0.3, np.float32), "min": np.full(c, -1.0, np.float32),
             "max": np.full(c, 1.0, np.float32)}
    model = PhysVAE(config, c, t, 0.05, data_stats=stats)
    fns = make_functions(model, config)
    hparams = HParams.create(**hp)
    state = fns.init(jax.random.key(0), hparams)
    losses = []
    for i in range(3):
        state, metrics = fns.train_step(state, (x, jnp.arange(8) < 7), jax.random.key(i + 1), hparams)
        losses.append(float(metrics["loss"]))
    norm = float(np.sqrt(sum(np.sum(np.asarray(v, np.float64) ** 2) for v in jax.tree.leaves(state.params))))
    return losses + [norm]


@pytest.mark.parametrize("name", list(CASES))
def test_a_few_steps_give_the_pinned_losses(name):
    np.testing.assert_allclose(_run(name), PINNED[name], rtol=2e-5)


if __name__ == "__main__":
    for name in CASES:
        print(f"    {name!r}: {_run(name)},")
