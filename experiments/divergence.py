"""Where training instabilities come from: a training run instrumented step by step, and the replay of a bad step.

    python -m experiments.divergence --preset locomotion-attnf-seq --epochs 300        # record, stop at divergence
    python -m experiments.divergence --replay runs/divergence-locomotion-attnf-seq-seed0/spike_000123.ckpt

The run takes the same steps as `jaxphysvae train` (same keys: epoch e uses fold_in(key(seed), e), its permutation
and step keys split as in `train_epoch`), one compiled step at a time, and before each step records: the gradient's
norm per parameter group (each network of the encoder and decoder, the Hamiltonian, x_lnvar), the objective's terms
(worst sequence and mean), the posterior log-variances and means per latent group (min / max), the per-step planar-
flow log-determinants at the posterior mean (most negative over the batch) and invertibility margins 1 + w^T u_hat =
flow_margin + softplus(w^T u) (smallest), the initial-state head's output, the physics trajectory's largest value,
the size of the Hamiltonian field at the initial state, and the sequence-attention gate. Rows go to steps.jsonl. A
step whose gradient norm is over --spike times the running median, or not finite, saves its input state, batch and
key (spike_STEP.ckpt) for replay; a replay recomputes that step's record from the file and must reproduce it exactly
(same machine)."""

from __future__ import annotations

import argparse
import json
import math
from collections import deque
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxphysvae import checkpoint, presets
from jaxphysvae.config import HParams, apply_overrides
from jaxphysvae.runs import compiled, load_splits
from jaxphysvae.flows import Planar, stack_params
from jaxphysvae.latents import GROUPS
from jaxphysvae.train import as_float32, epoch_batches, with_parameter_average


def _group_norms(grads) -> dict:
    out = {f"grad_{name}": optax.tree.norm(tree) for name, tree in grads["nets"].items()}
    out["grad_physics"] = optax.tree.norm(grads["physics"])
    if "x_lnvar" in grads:
        out["grad_x_lnvar"] = jnp.abs(grads["x_lnvar"])
    return out


def make_diagnostics(model, fns):
    """diagnostics(state, x, mask, key, hparams) -> dict of scalars about the step that `fns.train_step` would take
    on the batch x (B, C, T) whose valid rows are mask (B,)."""

    def diagnostics(state, x, mask, key, hparams):
        keys = jax.random.split(key, x.shape[0])  # as train_step draws them
        grads = jax.grad(lambda p: model.batch_loss(p, x, mask, keys, hparams)[0])(state.params)
        terms = model.sequence_losses(state.params, x, mask, keys, hparams)
        row = {"grad_norm": optax.tree.norm(grads), **_group_norms(grads)}
        for name, v in terms.items():
            row[f"{name}_mean"] = jnp.sum(jnp.where(mask, v, 0.0)) / jnp.sum(mask)
            row[f"{name}_max"] = jnp.max(jnp.where(mask, v, -jnp.inf))
        params = state.params
        post = model.encode(params, x)  # clean input: the posterior the noise perturbs
        for g, name in enumerate(GROUPS):
            if model.dims[g] == 0:
                continue
            row[f"lnvar_{name}_min"], row[f"lnvar_{name}_max"] = jnp.min(post.lnvar[g]), jnp.max(post.lnvar[g])
            row[f"mean_{name}_absmax"] = jnp.max(jnp.abs(post.mean[g]))
            steps = model.flow_steps[g]
            if steps:
                u, w, b = stack_params(post.flows[g], steps, model.dims[g])
                z = post.mean[g]
                log_dets, margins = [], []
                for k in range(steps):
                    z, log_det = Planar(u[k], w[k], b[k], model.config.flow_margin).forward_and_log_det(z)
                    log_dets.append(jnp.min(log_det))
                    margins.append(jnp.min(model.config.flow_margin + jax.nn.softplus(jnp.sum(w[k] * u[k], -1))))
                row[f"flow_{name}_logdet_min"] = jnp.min(jnp.stack(log_dets))
                row[f"flow_{name}_margin_min"] = jnp.min(jnp.stack(margins))
                row[f"flow_{name}_w_absmax"] = jnp.max(jnp.abs(w))
                row[f"flow_{name}_u_absmax"] = jnp.max(jnp.abs(u))
            if model.attention[g] == "seq":
                context = model._apply(params, f"context_{name}", x)
                row[f"context_{name}_absmax"] = jnp.max(jnp.abs(context))
        row["s0_absmax"] = jnp.max(jnp.abs(post.s0))
        z_mean, _ = model.latents(params, post, None, mask)
        x_p = model.simulate(params, z_mean.phy, post.s0)
        row["x_P_absmax"] = jnp.max(jnp.abs(x_p))
        field = jax.vmap(lambda s, z: model.physics.vector_field(params["physics"], 0.0, s, z))(post.s0, z_mean.phy)
        row["field_s0_absmax"] = jnp.max(jnp.abs(field))
        return row

    return jax.jit(diagnostics)


def _setup(args):
    config, hp = presets.get(args.preset)
    config, hp = apply_overrides(config, hp, args.set or [])
    hparams = as_float32(HParams.create(**hp))
    splits = load_splits(config)
    model, fns = compiled(config, splits)
    return config, hparams, splits, model, fns


def record(args) -> Path:
    """Train with diagnostics before every step; returns the output directory."""
    config, hparams, splits, model, fns = _setup(args)
    out = Path(args.out or f"runs/divergence-{args.preset}-seed{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(json.dumps(vars(args), indent=2))
    diagnostics = make_diagnostics(model, fns)
    run_key = jax.random.key(args.seed)
    state = fns.init(jax.random.fold_in(run_key, 0), hparams)
    x_train = jnp.asarray(splits["train"].x)
    n, b = x_train.shape[0], config.optimisation.batch_size
    recent = deque(maxlen=200)
    step, spikes = 0, 0
    with open(out / "steps.jsonl", "w") as log:
        for epoch in range(1, args.epochs + 1):
            order, masks, step_keys = epoch_batches(jax.random.fold_in(run_key, epoch), n, b)  # train_epoch's steps
            for index, mask, key in zip(np.asarray(order), masks, step_keys):
                x = x_train[index]
                row = {k: float(v) for k, v in diagnostics(state, x, mask, key, hparams).items()}
                row.update(epoch=epoch, step=step)
                median = float(np.median(recent)) if recent else math.inf
                bad = not math.isfinite(row["grad_norm"])
                if bad or (len(recent) >= 20 and row["grad_norm"] > args.spike * median):
                    path = out / f"spike_{step:06d}.ckpt"
                    checkpoint.save(path, {"state": state, "index": jnp.asarray(index), "mask": mask,
                                           "key": jax.random.key_data(key)},
                                    {"preset": args.preset, "set": args.set or [], "seed": args.seed, "row": row})
                    row["saved"] = path.name
                    spikes += 1
                log.write(json.dumps(row) + "\n")
                log.flush()
                if math.isfinite(row["grad_norm"]):
                    recent.append(row["grad_norm"])
                state, metrics = fns.train_step(state, (x, mask), key, hparams)
                step += 1
                if not all(math.isfinite(float(v)) for v in metrics.values()) or bad:
                    print(f"non-finite at epoch {epoch}, step {step - 1}; {spikes} steps saved in {out}")
                    return out
            if epoch % 10 == 0:
                print(f"epoch {epoch}: grad norm {row['grad_norm']:.3g}, kl max {row['kl_max']:.3g}, "
                      f"{spikes} spikes saved", flush=True)
    print(f"{args.epochs} epochs, {spikes} steps saved in {out}")
    return out


def replay(args) -> dict:
    """Recompute a saved step's record; returns {name: (replayed, recorded)} of the values that differ."""
    meta = checkpoint.read_meta(args.replay)
    args.preset, args.set, args.seed = meta["preset"], meta["set"], meta["seed"]
    config, hparams, splits, model, fns = _setup(args)
    batch_size = config.optimisation.batch_size
    template = {"state": fns.init(jax.random.key(0), hparams), "index": jnp.zeros(batch_size, jnp.int32),
                "mask": jnp.ones(batch_size, bool), "key": jax.random.key_data(jax.random.key(0))}
    saved, meta = checkpoint.load(args.replay, template, with_parameter_average)  # older files too
    x = jnp.asarray(splits["train"].x)[saved["index"]]
    row = make_diagnostics(model, fns)(saved["state"], x, saved["mask"], jax.random.wrap_key_data(saved["key"]),
                                       hparams)
    row = {k: float(v) for k, v in row.items()}
    differ = {k: (v, meta["row"][k]) for k, v in row.items()
              if not (v == meta["row"][k] or (math.isnan(v) and math.isnan(meta["row"][k])))}
    print(json.dumps(row, indent=1))
    print("replay reproduces the recorded step exactly" if not differ else f"replay differs: {differ}")
    return differ


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="locomotion-attnf-seq")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--spike", type=float, default=20.0, help="save steps whose gradient norm exceeds this "
                                                                  "multiple of the running median (of at least 20 "
                                                                  "steps)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--replay", default=None, help="a spike_STEP.ckpt to recompute")
    args = parser.parse_args(argv)
    return replay(args) if args.replay else record(args)


if __name__ == "__main__":
    from experiments.command import run_command
    run_command(main)
