import os
import subprocess
import sys
import tempfile
from pathlib import Path

# XLA's CPU compiler, set for tests to compile fast rather than to run fast: the suite's models are tiny and train
# for a few steps, so compiling is most of its time, and these flags take about a third off it (a toy phys-VAE's
# training epoch compiles in 6 s instead of 10-16 s on one core; two of the slowest tests, 145 s instead of 223 s).
# Level 1, not 0: level 0 with the legacy emitters made a stored program and a plain jit of the same model differ in
# the last bit, which the tests of exact resumption rightly refuse. Set here, before jax starts, so that the workers and
# every process a test starts inherit them. JAXPHYSVAE_TEST_XLA_DEFAULTS=1 runs the suite with XLA's own defaults;
# a jaxlib that does not know one of these flags (XLA aborts on those) gets none.
FAST_COMPILE_FLAGS = ("--xla_backend_optimization_level=1", "--xla_llvm_disable_expensive_passes=true",
                      "--xla_cpu_use_fusion_emitters=false")


def _fast_compile_flags() -> None:
    if os.environ.get("JAXPHYSVAE_TEST_XLA_DEFAULTS") == "1" or "JAXPHYSVAE_TEST_XLA_FLAGS_SET" in os.environ:
        return  # asked for the defaults, or set already (an xdist worker, or a subprocess of a test)
    os.environ["JAXPHYSVAE_TEST_XLA_FLAGS_SET"] = "1"
    flags = " ".join([os.environ.get("XLA_FLAGS", ""), *FAST_COMPILE_FLAGS]).strip()
    probe = subprocess.run([sys.executable, "-c", "import jax; jax.numpy.zeros(1).block_until_ready()"],
                           env={**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}, capture_output=True)
    if probe.returncode == 0:
        os.environ["XLA_FLAGS"] = flags


_fast_compile_flags()

import jax  # noqa: E402  (after the XLA flags above)
import pytest  # noqa: E402

from jaxphysvae import programs  # noqa: E402

# The project's read-only reference data, beside the repository on the developers' and CI's machines only: a user's
# clone has no such folder, and every test that needs it skips without it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RAW_DIR = SHARED_DATA / "lencioni2019_raw_subset"
PUBLISHED_SPLIT_DIR = SHARED_DATA / "locomotion_lencioni2019_physvae_split"

# Tests build the same small programs many times from different closures and processes: a compilation cache shared
# by the whole session (and by the subprocesses the tests start, through the environment) turns every repeat into a
# cache hit. The CLI's `main` reads the same variable.
# With pytest-xdist the controller's value reaches the workers through the environment, so that they share it.
COMPILATION_CACHE = os.environ.get("JAXPHYSVAE_TEST_XLA_CACHE") or tempfile.mkdtemp(prefix="jaxphysvae-xla-")
os.environ["JAXPHYSVAE_TEST_XLA_CACHE"] = os.environ["JAXPHYSVAE_COMPILATION_CACHE"] = COMPILATION_CACHE
jax.config.update("jax_compilation_cache_dir", COMPILATION_CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
# and so are the traced programs (jaxphysvae.programs), as in the command line: a test that builds a model another
# test or worker has built reads its programs back instead of tracing it
programs.enable(Path(COMPILATION_CACHE) / "programs")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Generated data go to a fresh cache directory in every test; locomotion data come from the package unless a
    test says otherwise."""
    monkeypatch.setenv("JAXPHYSVAE_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("JAXPHYSVAE_LOCOMOTION_DIR", raising=False)


def published_split_dir():
    """The reference copy of the published locomotion split in ../shared; skip the test when it is absent."""
    if not PUBLISHED_SPLIT_DIR.is_dir():
        pytest.skip("reference locomotion files (../shared) not available")
    return PUBLISHED_SPLIT_DIR


def raw_dir():
    """The raw files of 22 subjects in ../shared; skip the test when they are absent."""
    if not RAW_DIR.is_dir():
        pytest.skip("raw locomotion files not available")
    return RAW_DIR
