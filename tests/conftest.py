import os
import tempfile
from pathlib import Path

import jax
import pytest

from jaxphysvae import programs

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
