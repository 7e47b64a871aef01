"""The training objective of METHOD.md section 1, per sequence, and its masked batch mean."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from jaxphysvae.config import HParams
from jaxphysvae.encoder import Noise


def masked_mean(v: Float[Array, "B"], mask: Bool[Array, "B"]) -> Float[Array, ""]:
    """Mean of per-sequence values v over the rows where mask is True (a masked row's value, even NaN, is unused)."""
    count = jnp.sum(mask.astype(v.dtype))
    return jnp.sum(jnp.where(mask, v, 0.0)) / jnp.maximum(count, 1.0)


def sequence_losses(model, params, x: Float[Array, "B C T"], mask: Bool[Array, "B"], keys: jax.Array,
                    hparams: HParams) -> dict[str, Float[Array, "B"]]:
    """The objective of `model` (a PhysVAE) and its parts, per sequence.

    Args:
      x: clean data, the targets; mask: valid rows (used only by a "batch" attention context); keys: (B,)
        per-sequence keys, the randomness of each sequence's sample, augmentation and noise (so a sequence's terms
        do not depend on the rest of its batch, except through a "batch" context). The encoder sees x corrupted by
        config.noise at level hparams.noise (clean when the kind is "none").

    Returns:
      {name: (B,)}: "objective" = ||x_PAB - x||^2 + (kl_weight + alpha) sigma^2 KL + gamma R_DA1 + beta R_DA2
      + alpha R_ppc with sigma^2 = exp(x_lnvar), and "sse", "kl", "neg_elbo", "r_da1", "r_da2", "r_ppc". With a
      learned variance the squared error is weighted sigma^2_sg / sigma^2 plus C T sigma^2_sg ln sigma^2
      (sg = stop-gradient): the same value and network gradients, and the maximum-likelihood gradient for sigma^2.
    """
    config = model.config
    parts = jax.vmap(lambda k: jax.random.split(k, 3))(keys)
    k_sample, k_aug, k_noise = parts[:, 0], parts[:, 1], parts[:, 2]
    noise = Noise(config.noise, hparams.noise, k_noise)
    post = model.encode(params, x, noise if config.noise != "none" else None)
    z, kl = model.latents(params, post, k_sample, mask)
    rec = model.decode(params, z, post.s0)
    sq = lambda a, b: jnp.sum((a - b) ** 2, axis=(1, 2))
    sse = sq(rec.x_PAB, x)
    zero = jnp.zeros_like(sse)
    r_da1 = sq(post.unmixed, jax.lax.stop_gradient(rec.x_P)) if config.unmixer != "none" else zero
    if config.ppc == "all":
        r_ppc = (sq(rec.x_PA, rec.x_P) + sq(rec.x_PB, rec.x_P) + sq(rec.x_PAB, rec.x_PA)
                 + sq(rec.x_PAB, rec.x_PB)) / 4
    else:
        r_ppc = sq(rec.x_PB, rec.x_P)
    if model.dims.phy:
        z_aug = jax.vmap(lambda k: model.physics.sample_augmentation(k, 1)[0])(k_aug)
        x_aug = jax.lax.stop_gradient(model.simulate(params, z_aug, post.s0))
        r_da2 = jnp.sum((model.physics_mean(params, x_aug) - z_aug) ** 2, axis=-1)
    else:
        r_da2 = zero
    lnvar = model.x_lnvar(params, hparams)
    var_sg = jnp.exp(jax.lax.stop_gradient(lnvar))
    ct = model.num_channels * model.num_steps
    nll_scaled = sse * var_sg * jnp.exp(-lnvar) + ct * var_sg * (lnvar - jax.lax.stop_gradient(lnvar))
    objective = (nll_scaled + (hparams.kl_weight + hparams.alpha) * var_sg * kl + hparams.gamma * r_da1
                 + hparams.beta * r_da2 + hparams.alpha * r_ppc)
    neg_elbo = sse / (2 * jnp.exp(lnvar)) + 0.5 * ct * (jnp.log(2 * jnp.pi) + lnvar) + kl
    return {"objective": objective, "sse": sse, "kl": kl, "neg_elbo": neg_elbo, "r_da1": r_da1, "r_da2": r_da2,
            "r_ppc": r_ppc}


def batch_loss(model, params, x: Float[Array, "B C T"], mask: Bool[Array, "B"], keys: jax.Array,
               hparams: HParams) -> tuple[Float[Array, ""], dict[str, Float[Array, ""]]]:
    """The masked mean of `model.sequence_losses` over the valid rows: (loss, metrics) with every part's mean
    ("loss" the objective, "sse", "kl", "neg_elbo", "r_da1", "r_da2", "r_ppc") and "x_lnvar", the log noise variance
    in use."""
    terms = model.sequence_losses(params, x, mask, keys, hparams)
    metrics = {name: masked_mean(v, mask) for name, v in terms.items()}
    metrics["loss"] = metrics.pop("objective")
    metrics["x_lnvar"] = jnp.asarray(model.x_lnvar(params, hparams), jnp.float32)
    return metrics["loss"], metrics
