import tempfile

import jax
import pytest

from jaxphysvae.data import locomotion

RAW_DIR = locomotion.SHARED_DATA / "lencioni2019_raw_subset"

# Tests build the same small programs many times from different closures: a compilation cache shared by the
# whole session turns every repeat into a cache hit.
jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="jaxphysvae-xla-"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Generated data go to a fresh cache directory in every test."""
    monkeypatch.setenv("JAXPHYSVAE_DATA_DIR", str(tmp_path / "cache"))


def locomotion_dir():
    """The shared locomotion split (env setting or default); skip tests that need it when it is absent."""
    try:
        return locomotion.locate(None)
    except Exception:
        pytest.skip("locomotion split not available (set JAXPHYSVAE_LOCOMOTION_DIR)")


def raw_dir():
    if not RAW_DIR.is_dir():
        pytest.skip("raw locomotion files not available")
    return RAW_DIR
