"""Plant realistic bugs one at a time in a copy of the repository and check that the test suite catches each.

    python -m tests.planted_bugs                 # every bug; writes docs/planted_bugs.md
    python -m tests.planted_bugs --only kl_sign  # some of them (their rows of docs/planted_bugs.md replaced)

Each bug is a textual replacement in one file (it must match exactly once, so the list cannot silently go stale)
and the test files that should catch it. A bug is caught when those tests fail on the planted copy; the copy is
built from the files git tracks, so the working tree is never touched. Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]


class Bug(NamedTuple):
    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


BUGS = [
    Bug("kl_sign", "the sign of the flow log-determinant in the exact KL flipped", "jaxphysvae/posterior.py",
        "jnp.sum(q0.log_prob(z0), -1) - log_det - jnp.sum(prior.log_prob(zk), -1)",
        "jnp.sum(q0.log_prob(z0), -1) + log_det - jnp.sum(prior.log_prob(zk), -1)", ("tests/test_flows.py",)),
    Bug("da2_stop_gradient", "R_DA2 without the stop-gradient on the augmented physics signal",
        "jaxphysvae/objective.py", "x_aug = jax.lax.stop_gradient(model.simulate(params, z_aug, post.s0))",
        "x_aug = model.simulate(params, z_aug, post.s0)", ("tests/test_objective.py",)),
    Bug("da1_stop_gradient", "R_DA1 without the stop-gradient on x_P", "jaxphysvae/objective.py",
        "sq(post.unmixed, jax.lax.stop_gradient(rec.x_P))", "sq(post.unmixed, rec.x_P)",
        ("tests/test_objective.py",)),
    Bug("kl_weight", "the KL weight (kl_weight + alpha) replaced by kl_weight", "jaxphysvae/objective.py",
        "(hparams.kl_weight + hparams.alpha) * var_sg * kl", "hparams.kl_weight * var_sg * kl",
        ("tests/test_objective.py",)),
    Bug("grid_off_by_one", "the fine integration grid built with linspace(t0, tN, T * substeps)",
        "jaxphysvae/physics/integrate.py",
        "fine = np.interp(np.arange((len(t) - 1) * substeps + 1) / substeps, np.arange(len(t)), t)",
        "fine = np.linspace(t[0], t[-1], len(t) * substeps)", ("tests/test_objective.py",)),
    Bug("observe_p", "the Hamiltonian observing p instead of q", "jaxphysvae/physics/systems.py",
        "q = state[: self.channels]", "q = state[self.channels:]", ("tests/test_objective.py",)),
    Bug("masked_mean", "masked_mean ignoring the mask (padding rows counted)", "jaxphysvae/objective.py",
        "    return jnp.sum(jnp.where(mask, v, 0.0)) / jnp.maximum(count, 1.0)\n", "    return jnp.mean(v)\n",
        ("tests/test_objective.py",)),
    Bug("epoch_padding", "an epoch's filler rows (the last batch's padding) trained on as data", "jaxphysvae/train.py",
        "mask = jnp.arange(count * batch_size) < n", "mask = jnp.ones(count * batch_size, bool)",
        ("tests/test_train.py",)),
    Bug("warmup_off_by_one", "the warm-up's first step at learning rate 0", "jaxphysvae/train.py",
        "jnp.minimum(1.0, (t + 1.0) / ", "jnp.minimum(1.0, t / ", ("tests/test_train.py",)),
    Bug("rollback_forgotten", "a resumed run forgets its rollbacks' learning-rate scale", "jaxphysvae/fit.py",
        '        recovery = meta.get("recovery", recovery)\n', "", ("tests/test_train.py",)),
    Bug("sweep_seeds", "sweep members' seeds reversed", "jaxphysvae/sweep.py",
        'seeds = [int(m["seed"]) for m in padded]', 'seeds = [int(m["seed"]) for m in padded][::-1]',
        ("tests/test_sweep.py",)),
    Bug("first_key", "every sequence's latent sample drawn from the batch's first key", "jaxphysvae/posterior.py",
        "eps = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, g), m.shape[1:]))(keys)",
        "eps = jax.random.normal(jax.random.fold_in(keys[0], g), m.shape)", ("tests/test_posteriors.py",)),
    Bug("no_lock", "the run directory lock taken but never enforced", "jaxphysvae/rundir.py",
        "            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n", "            pass\n", ("tests/test_runs.py",)),
    Bug("no_sigterm", "SIGTERM left to kill the process", "jaxphysvae/interrupt.py",
        "SIGNALS = (signal.SIGINT, signal.SIGTERM)", "SIGNALS = (signal.SIGINT,)", ("tests/test_runs.py",)),
    Bug("no_timed_checkpoint", "checkpoints by epoch count only", "jaxphysvae/fit.py",
        '                            or time.monotonic() - saved["time"] >= checkpoint_seconds):',
        "                            ):", ("tests/test_runs.py",)),
    Bug("no_provenance", "other data accepted on resume and eval", "jaxphysvae/rundir.py",
        "        if then[\"sha256\"] != now[\"sha256\"] or list(then[\"shape\"]) != list(now[\"shape\"]):",
        "        if False:", ("tests/test_runs.py",)),
    Bug("permutation", "the published split's permutation drawn with RandomState.permutation",
        "jaxphysvae/data/raw.py",
        'return np.argsort(np.random.RandomState(PUBLISHED_SEED).random_sample(n), kind="stable")',
        "return np.random.RandomState(PUBLISHED_SEED).permutation(n)", ("tests/test_data_raw.py",)),
    Bug("raw_float32", "the builder rounding raw angles to float32", "jaxphysvae/data/raw.py",
        'scipy.io.savemat(tmp, {"data": np.asarray(ds.x, np.float64)})',
        'scipy.io.savemat(tmp, {"data": np.asarray(ds.x, np.float32).astype(np.float64)})',
        ("tests/test_data_raw.py",)),
    Bug("predict_batch_keys", "predict's samples keyed by the row in the batch instead of the sequence's index",
        "jaxphysvae/predict.py", "per_sequence = lambda k: jax.vmap(lambda i: jax.random.fold_in(k, i))(index)",
        "per_sequence = lambda k: jax.vmap(lambda i: jax.random.fold_in(k, i))(jnp.arange(index.shape[0]))",
        ("tests/test_user_physics.py",)),
    Bug("physics_unchecked", "a run's recorded physics never compared with the rebuilt model", "jaxphysvae/runs.py",
        '    recorded = record.get("physics")\n', "    recorded = None\n", ("tests/test_user_physics.py",)),
    Bug("file_params_unpermuted", "a data file's parameters left in file order while its sequences are shuffled",
        "jaxphysvae/data/arrays.py", "{k: v[index] for k, v in params.items()}",
        "{k: v[:len(index)] for k, v in params.items()}", ("tests/test_user_data.py",)),
    Bug("mix_not_applied", "the mixing augmentation never applied in the training step", "jaxphysvae/train.py",
        "        x = mix_sequences(x, mask, keys, hparams.mix)\n", "", ("tests/test_mixing.py",)),
    Bug("mix_mask_ignored", "padding rows chosen as mixing partners", "jaxphysvae/mixing.py",
        "logits = jnp.where(mask, 0.0, -jnp.inf)", "logits = jnp.zeros(mask.shape)", ("tests/test_mixing.py",)),
    Bug("mix_one_key", "every sequence's mixing draws from the batch's first key", "jaxphysvae/mixing.py",
        "partner, lam = jax.vmap(draws)(keys)", "partner, lam = jax.vmap(lambda k: draws(keys[0]))(keys)",
        ("tests/test_mixing.py",)),
    Bug("decay_everywhere", "the decoder's weight decay applied to every network", "jaxphysvae/train.py",
        "decay(net) if name in DECODER_NETWORKS else zero(net)", "decay(net)", ("tests/test_train.py",)),
    Bug("decay_not_physics", "the decoder's weight decay leaving the physics model's parameters out",
        "jaxphysvae/train.py", '    terms["physics"] = decay(params["physics"])\n',
        '    terms["physics"] = zero(params["physics"])\n', ("tests/test_train.py",)),
    Bug("encoder_lr_everywhere", "the inference side's learning-rate scale applied to the decoder's networks too",
        "jaxphysvae/train.py", "one if name in DECODER_NETWORKS else scale", "scale", ("tests/test_train.py",)),
    Bug("encoder_lr_ignored", "the inference side's learning-rate scale never applied", "jaxphysvae/train.py",
        "-lr * (s * u + d)", "-lr * (u + d)", ("tests/test_train.py",)),
    Bug("aux2_ls_without_decoder", "the least-squares z_A2 fitted to x itself, not to what the rest of the decoder "
        "leaves of it", "jaxphysvae/model.py", "w @ (x.reshape(b, -1) - base).T", "w @ x.reshape(b, -1).T",
        ("tests/test_aux2_least_squares.py",)),
    Bug("aux2_ls_bias_in_w", "the least-squares z_A2's W read as the residual's responses to the unit codes, bias "
        "included", "jaxphysvae/model.py", "w = response[1:] - response[:1]", "w = response[1:]",
        ("tests/test_aux2_least_squares.py",)),
    Bug("aux2_ls_clean_input", "the least-squares z_A2 fitted to the clean input under an input noise",
        "jaxphysvae/model.py", "post = self.fit_aux2_mean(params, seen, post)",
        "post = self.fit_aux2_mean(params, x, post)", ("tests/test_aux2_least_squares.py",)),
    Bug("gn_step_sign", "Gauss-Newton's step taken uphill (x + delta)", "jaxphysvae/refine.py",
        "trial = v - damped_step(jac, r, mu)", "trial = v + damped_step(jac, r, mu)", ("tests/test_refine.py",)),
    Bug("gn_stale_jacobian", "Gauss-Newton's Jacobian taken once, at the encoder's code", "jaxphysvae/refine.py",
        "jac, r = jacobian_and_residual(v)\n",
        "jac, r = jacobian_and_residual(flat)[0], residual(v)\n", ("tests/test_refine.py",)),
    Bug("gn_stale_residual", "Gauss-Newton's gradient J^T r with the residual of the encoder's code",
        "jaxphysvae/refine.py", "jac, r = jacobian_and_residual(v)\n",
        "jac, r = jacobian_and_residual(v)[0], residual(flat)\n", ("tests/test_refine.py",)),
    Bug("grid_chosen_worst", "the grid's combination chosen on each fold by the highest validation MAE",
        "experiments/unseen_subjects.py", "pick = np.argmin(", "pick = np.argmax(",
        ("tests/test_experiments_unseen_subjects.py",)),
    Bug("grid_members_by_order", "a grid's members grouped by position (combination-major), not by their values",
        "experiments/unseen_subjects.py",
        "                ids = [i for i, m in enumerate(result[\"members\"])\n"
        "                       if all(np.isclose(m[key], value, rtol=1e-6) for key, value in combo.items())]\n",
        "                ids = list(range(c * len(seeds), (c + 1) * len(seeds)))\n",
        ("tests/test_experiments_unseen_subjects.py",)),
    Bug("curve_all_members", "a grid row's learning curve averaged over every member of the fold's sweep",
        "experiments/unseen_subjects.py", "curve = learning_curve(target, ids)", "curve = learning_curve(target)",
        ("tests/test_experiments_unseen_subjects.py",)),
    Bug("curve_members_ignored", "learning_curve's member choice ignored (every member averaged)",
        "experiments/sweeps.py", "    pick = (lambda values: values) if members is None else",
        "    pick = (lambda values: values) if True else", ("tests/test_experiments_sweeps.py",)),
    Bug("pool_unweighted", "pooled pieces averaged per table, not weighted by their numbers of seeds",
        "experiments/pool_seeds.py", "for figures, _, _ in pieces], weights=weights))",
        "for figures, _, _ in pieces]))", ("tests/test_experiments_pool_seeds.py",)),
    Bug("pool_seed_twice", "a seed in two pooled tables on the same fold counted twice",
        "experiments/pool_seeds.py", "if counted & set(seeds):", "if False:", ("tests/test_experiments_pool_seeds.py",)),
    Bug("refine_parts_adam", "refine's Adam fitting every part of the code, not only `parts`", "jaxphysvae/refine.py",
        "optimiser.update(jax.tree.map(jnp.multiply, grad(code), mask), state)", "optimiser.update(grad(code), state)",
        ("tests/test_refine.py",)),
    Bug("refine_parts_gauss_newton", "refine's Gauss-Newton fitting every part of the code, not only `parts`",
        "jaxphysvae/refine.py", "                jac = jac * fitted  #", "                jac = jac  #",
        ("tests/test_refine.py",)),
    Bug("init_refine_uphill", "the encoder's Gauss-Newton step on s0 taken with the wrong sign", "jaxphysvae/model.py",
        "x_new, moved = reconstruct(post.s0 + step)", "x_new, moved = reconstruct(post.s0 - step)",
        ("tests/test_model.py",)),
    Bug("init_refine_stale_aux2", "the encoder's step on s0 not re-fitting z_A2's least-squares code",
        "jaxphysvae/model.py", "                trial = self.fit_aux2_mean(params, x, trial)\n",
        "                pass\n", ("tests/test_model.py",)),
    Bug("init_window_end", "the windowed initial-state head reading the last samples", "jaxphysvae/encoder.py",
        "x[:, :, :self.init_window]", "x[:, :, -self.init_window:]", ("tests/test_model.py",)),
    Bug("ema_lagging_params", "the parameter average taken of the parameters before the step",
        "jaxphysvae/train.py",
        "average = average_parameters(state.ema_params, params, state.step, hparams.ema_decay)",
        "average = average_parameters(state.ema_params, state.params, state.step, hparams.ema_decay)",
        ("tests/test_train.py",)),
    Bug("ema_fit_validates_params", "a run validated on its raw parameters instead of their average",
        "jaxphysvae/fit.py", "valid, _ = evaluate(fns, new_state.ema_params,",
        "valid, _ = evaluate(fns, new_state.params,", ("tests/test_train.py",)),
    Bug("ema_best_ckpt_params", "best.ckpt holding the raw parameters instead of their average", "jaxphysvae/fit.py",
        'checkpoint.save(out / "best.ckpt", best_state.ema_params, meta)',
        'checkpoint.save(out / "best.ckpt", best_state.params, meta)', ("tests/test_train.py",)),
    Bug("ema_sweep_validates_params", "a sweep's members validated on their raw parameters",
        "jaxphysvae/sweep.py", "valid = evaluate_members(state.ema_params,", "valid = evaluate_members(state.params,",
        ("tests/test_sweep.py",)),
    Bug("ema_old_state_dropped", "a state saved before the parameter average not upgraded on load",
        "jaxphysvae/train.py",
        'if {"params", "opt_state", "step"} <= state_dict.keys() and "ema_params" not in state_dict:', "if False:",
        ("tests/test_train.py",)),
    Bug("eval_fitted_sse_of_encoder", "eval --refine-steps reporting the encoder's squared error as the fitted one's",
        "jaxphysvae/cli.py", '"sse_per_seq_encoder": float(np.mean(fitted["sse_start"])),',
        '"sse_per_seq": float(np.mean(fitted["sse_start"])),', ("tests/test_cli_train.py",)),
    Bug("eval_member_unnamed", "eval of a sweep member writing the file a run's eval writes (members overwrite "
        "each other)", "jaxphysvae/cli.py", "f\"eval_{'' if member is None else f'member{member}_'}{args.split}",
        "f\"eval_{args.split}", ("tests/test_sweep.py",)),
    Bug("resume_new_hparam", "a sweep stored before a hyper-parameter was added compared without its default",
        "jaxphysvae/sweep.py", "members = [[resumable_hparams(m) for m in r[\"members\"]] for r in (stored, record)]",
        "members = [r[\"members\"] for r in (stored, record)]", ("tests/test_runs.py",)),
    Bug("retime_not_trained", "the training step without the re-timing augmentation", "jaxphysvae/train.py",
        "        x = retime_sequences(x, keys, hparams.retime, model.config.time_warp_anchor)\n", "",
        ("tests/test_timewarp.py",)),
    Bug("logit_clipped", "z_P in logit space clipped to the range instead of mapped into it", "jaxphysvae/posterior.py",
        "z_phy = self.physics.to_range(z[0])", "z_phy = self.physics.clip(z[0])", ("tests/test_posteriors.py",)),
    Bug("logit_da2_raw", "R_DA2 comparing the logit-space mean with the physical parameter",
        "jaxphysvae/model.py", 'return self.physics.to_range(mean) if self.config.z_phy_space == "logit" else mean',
        "return mean", ("tests/test_posteriors.py",)),
    Bug("da2_flowed_ignored", "R_DA2 on the base mean although da2_flowed asks for the flowed one",
        "jaxphysvae/model.py", "if self.config.da2_flowed and self.flow_steps.phy:", "if False:",
        ("tests/test_posteriors.py",)),
    Bug("unfinished_sweep_unnamed", "an unfinished sweep not named as one (a missing sweep.json, no --resume hint)",
        "jaxphysvae/sweep.py", "and not (out / \"sweep.json\").is_file():", "and False:",
        ("tests/test_sweep.py::test_cli_sweep",)),
    Bug("predict_dir_first", "predict creating its output directory before the run loads (a stray directory)",
        "jaxphysvae/cli.py",
        "    config, hparams, model, fns, params, splits, _ = load_any(args.run_dir, other_data=args.data is not None)\n"
        "    rundir.prepare(target.parent, \"directory of --out\")\n",
        "    rundir.prepare(target.parent, \"directory of --out\")\n"
        "    config, hparams, model, fns, params, splits, _ = load_any(args.run_dir, other_data=args.data is not None)\n",
        ("tests/test_sweep.py::test_cli_sweep",)),
    Bug("table_overwritten", "an experiment's table replaced by another call's of other models", "experiments/report.py",
        "        if sorted(held) != sorted(models):", "        if False:",
        ("tests/test_experiments_variants.py::test_set_changes_every_variant_into_its_own_sweep_and_table",
         "tests/test_experiments_unseen_subjects.py::test_a_table_of_other_presets_is_refused_before_anything_runs")),
    Bug("seed_counted_twice", "a seed in two of a model's --train sweeps counted twice in its mean +- std",
        "experiments/noise_robustness.py", "            if seed in seeds[level]:", "            if False:",
        ("tests/test_experiments_noise_robustness.py::test_a_preset_trained_with_each_noise_is_evaluated_with_it",)),
    Bug("clean_model_of_other_config", "a kind's clean model taken from a sweep of another configuration",
        "experiments/noise_robustness.py", "        if {k: v for k, v in result[\"config\"].items() if k != \"noise\"} != wanted:",
        "        if False:",
        ("tests/test_experiments_noise_robustness.py::test_a_preset_trained_with_each_noise_is_evaluated_with_it",)),
    Bug("table_seed_counted_twice", "a seed in two of the tables pooled counted twice in its mean +- std",
        "experiments/noise_robustness.py", '                    if seed in entry["seeds"]:',
        "                    if False:",
        ("tests/test_experiments_noise_robustness.py::test_a_preset_trained_with_each_noise_is_evaluated_with_it",)),
    Bug("table_seeds_misaligned", "the pooled tables' per-seed errors listed in the order given, not by seed",
        "experiments/noise_robustness.py", 'seeds = tuple(sorted(entry["seeds"]))', 'seeds = tuple(entry["seeds"])',
        ("tests/test_experiments_noise_robustness.py::test_tables_of_separate_calls_pool_their_seeds",)),
    Bug("locomotion_sizes_ignored", "split sizes for the packaged locomotion split silently ignored",
        "jaxphysvae/runs.py",
        "    if given and config.data.dataset not in data.GENERATED:", "    if False:",
        ("tests/test_user_data.py::test_split_sizes_for_the_packaged_locomotion_split_are_refused_not_ignored",)),
    Bug("quick_full_size", "noise_robustness --quick training the preset at full size",
        "experiments/noise_robustness.py",
        "changes=presets.TOY_WIDTHS if args.quick else None", "changes=None",
        ("tests/test_experiments_noise_robustness.py::test_quick_train_runs_the_command_end_to_end",)),
    Bug("probe_label_base_only", "a probed sweep named by its base preset even when it equals another preset",
        "experiments/probes.py", '(n for n in (result["preset"], *presets.PRESETS) if',
        '(n for n in (result["preset"],) if',
        ("tests/test_experiments_probes.py::test_a_sweep_members_label_names_what_varies_but_the_seed",)),
    Bug("suite_option_misspelt", "an option of the accelerator suite's sweep job misspelt (its job would fail after the "
        "others had run)", "benchmarks/run.py", '"256", "--epochs", "3"]', '"256", "--epochz", "3"]',
        ("tests/test_benchmarks.py::test_every_suite_passes_each_benchmark_arguments_it_accepts",)),
    Bug("accelerator_rows_by_cores", "the accelerator suite's sweep rows labelled by CPU cores instead of the device",
        "benchmarks/run.py", 'if on_cpu else first["device"]', 'if True else first["device"]',
        ("tests/test_benchmarks.py::test_accelerator_suite_writes_its_own_block_and_names_the_device",)),
    Bug("least_squares_params_ignored", "the least-squares fit ignoring given physics parameters (init's used)",
        "jaxphysvae/physics/least_squares.py", "    if params is None:\n        return initial\n",
        "    if True:\n        return initial\n",
        ("tests/test_least_squares.py::test_given_parameters_fit_the_physics_through_a_trained_observation_map",)),
    Bug("probe_fit_cache_ignores_data", "the probes' shared least-squares fit keyed without the sequences",
        "experiments/probes.py", "    digest.update(x.tobytes())\n", "",
        ("tests/test_experiments_probes.py::test_the_initial_parameter_fit_is_shared_only_by_runs_with_the_same_"
         "physics_and_sequences",)),
    Bug("retime_nearest", "the decoder's time warp reading the nearest sample (no interpolation, no gradient in the "
        "shift)", "jaxphysvae/timewarp.py", "weight = (positions - left)[:, None]",
        "weight = (jnp.round(positions) - left)[:, None]", ("tests/test_timewarp.py",)),
    Bug("retime_residual_only", "the decoder's time warp applied to the full reconstruction alone",
        "jaxphysvae/decoder.py", "return Reconstructions(*(retime(x, shift, self.time_warp_anchor) for x in out))",
        "return out._replace(x_PAB=retime(out.x_PAB, shift, self.time_warp_anchor))", ("tests/test_timewarp.py",)),
    Bug("warped_pca_forward_back", "time-warped PCA reading its projection back at the forward warp",
        "experiments/warped_pca.py", "recon = resample(projected, inverse)", "recon = resample(projected, forward)",
        ("tests/test_experiments_warped_pca.py",)),
    Bug("warped_pca_no_realignment", "time-warped PCA fitting its basis without re-estimating the training warps",
        "experiments/warped_pca.py", "warps = np.clip(warps - np.median(warps), shifts.min(), shifts.max())",
        "warps = np.zeros(len(train))", ("tests/test_experiments_warped_pca.py",)),
]


def plant(bug: Bug, into: Path) -> None:
    """Copy the tracked files of the repository into `into` and apply `bug`."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    path = into / bug.path
    text = path.read_text()
    if text.count(bug.old) != 1:
        raise SystemExit(f"{bug.name}: the text to replace occurs {text.count(bug.old)} times in {bug.path}")
    path.write_text(text.replace(bug.old, bug.new))


def run(bug: Bug) -> dict:
    # beside the repository, so that the copy sees ../shared as the repository does
    with tempfile.TemporaryDirectory(prefix=f"planted-{bug.name}-", dir=ROOT.parent) as tmp:
        plant(bug, Path(tmp))
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *bug.tests],
                              cwd=tmp, capture_output=True, text=True)
        failed = [line.split(" ")[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
    return {"name": bug.name, "what": bug.what, "caught": done.returncode != 0, "by": failed,
            "seconds": time.perf_counter() - t0}


HEADER = ["# Planted bugs and the tests that catch them", "",
          "`python -m tests.planted_bugs` plants each bug below, one at a time, in a copy of the repository and runs "
          "the named test files against it (`tests/planted_bugs.py` holds the exact replacements).", "",
          "| bug | what | caught | failing test | seconds |", "|---|---|---|---|---|"]


def table_row(r: dict) -> str:
    return (f"| `{r['name']}` | {r['what']} | {'yes' if r['caught'] else '**no**'} | "
            f"{'<br>'.join(f'`{t}`' for t in r['by']) or '-'} | {r['seconds']:.0f} |")


def write_table(rows: list[dict], out: Path) -> None:
    """Write the rows of the bugs just planted into `out`'s table: a row of a bug planted now replaces its old row,
    the rows of the bugs not planted this time and any text after the table are kept, and the table follows the
    order of BUGS (a bug no longer in BUGS loses its row)."""
    old_rows, trailer = {}, []
    if out.exists():
        lines = out.read_text().splitlines()
        table = [i for i, line in enumerate(lines) if line.startswith("| `")]
        old_rows = {lines[i].split("`")[1]: lines[i] for i in table}
        trailer = lines[table[-1] + 1:] if table else []
    new_rows = {r["name"]: table_row(r) for r in rows}
    body = [new_rows.get(b.name) or old_rows.get(b.name) for b in BUGS]
    out.write_text("\n".join(HEADER + [line for line in body if line] + trailer) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="names of the bugs to plant")
    parser.add_argument("--out", default=str(ROOT / "docs" / "planted_bugs.md"))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only or ()) - {b.name for b in BUGS})
    if unknown:
        parser.error(f"no planted bug named {', '.join(unknown)}")
    bugs = [b for b in BUGS if args.only is None or b.name in args.only]
    rows = []
    for bug in bugs:
        rows.append(run(bug))
        r = rows[-1]
        print(f"{r['name']:<22} {'caught' if r['caught'] else 'MISSED':<7} {r['seconds']:6.1f} s  "
              f"{', '.join(r['by'])}", flush=True)
        write_table(rows, Path(args.out))
    return 0 if all(r["caught"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
