"""Traced programs kept on disk, so that a repeated run neither traces nor lowers its model again.

JAX's persistent compilation cache stores compiled executables, but to find one JAX must first trace the Python
model and lower it to HLO, whose hash is the key: for a locomotion model's training epoch that is 3-5 s of
single-threaded Python (diffrax's solver, the gradient, flax), most of a repeated run's start. This module keeps the
lowered program itself (StableHLO through `jax.export`) under a key that names everything the trace depends on; a
later process reads it back (milliseconds), wraps it in a small jit, and XLA's compilation of that is then a hit in
the persistent compilation cache.

    step = cached_jit(fn, "train_epoch", identity="...")   # like jax.jit(fn), plus the on-disk program cache
    out = step(*args)

The key of a program is the SHA-256 of: its name; `identity`, a string that fixes the function's closure (for a
model, its configuration, data shape, time step and data statistics); the arguments' tree structure, shapes and
dtypes and the static arguments' values; the versions of Python, jax, jaxlib, flax, optax, diffrax, equinox,
lineax and distrax; a digest of every source file of this package; the JAX settings that change a trace (x64, matmul
precision, PRNG implementation, threefry partitioning), EQX_ON_ERROR, and the backend and device kind. A change to
any of them is a new key, never a stale program. The cache is used only when `enable()` named a directory (the CLI
does, beside the compilation cache), for concrete single-device arguments; anything else (tracers, as under a
user's own jit or vmap, arguments on several devices, Python scalars) goes through the plain `jax.jit`, as does a
function built with identity None (a model with user-supplied physics, whose source this module cannot vouch for).
An unreadable or corrupt file is traced again and replaced, with a warning. The files are Python pickles (the
program and its output structure): like JAX's compilation cache, which holds machine code, the directory must be
writable by you alone.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import os
import pickle
import platform
import warnings
from pathlib import Path
from typing import Any, Callable

import jax

from jaxphysvae.files import atomic_path

_DIRECTORY: Path | None = None
_PACKAGES = ("jax", "jaxlib", "flax", "optax", "diffrax", "equinox", "lineax", "distrax")
SUFFIX = ".jaxprogram"


def enable(directory: str | os.PathLike | None) -> None:
    """Keep traced programs in `directory` (created when first written); None turns the cache off."""
    global _DIRECTORY
    _DIRECTORY = None if directory is None else Path(directory)


def directory() -> Path | None:
    """The directory in use, or None when the cache is off."""
    return _DIRECTORY


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 over the path and bytes of every .py file of the jaxphysvae package."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _versions() -> str:
    found = [f"python={platform.python_version()}"]
    for name in _PACKAGES:
        try:
            found.append(f"{name}={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name}=absent")
    return ";".join(found)


def _environment() -> str:
    """What else changes a trace: JAX settings, equinox's error mode, the backend and device kind."""
    c = jax.config
    device = jax.devices()[0]
    return ";".join([_versions(), source_digest(), f"x64={c.jax_enable_x64}",
                     f"precision={c.jax_default_matmul_precision}", f"prng={c.jax_default_prng_impl}",
                     f"threefry_partitionable={c.jax_threefry_partitionable}",
                     f"EQX_ON_ERROR={os.environ.get('EQX_ON_ERROR')}", f"{device.platform}:{device.device_kind}"])


def _leaf_signature(leaf) -> tuple | None:
    """(shape, dtype, weak type) of a concrete single-device array, else None (not cacheable)."""
    if isinstance(leaf, jax.core.Tracer) or not isinstance(leaf, jax.Array) or leaf.sharding.num_devices != 1:
        return None
    return leaf.shape, leaf.dtype, getattr(leaf, "weak_type", False)  # cheap: it runs for every leaf of every call


class _Program:
    """A deserialised program: a jit of the exported call on flat leaves, and its outputs' tree structure."""

    def __init__(self, exported, out_tree):
        self.call = jax.jit(exported.call)
        self.out_tree = out_tree

    def __call__(self, leaves):
        return jax.tree.unflatten(self.out_tree, self.call(*leaves))


def cached_jit(fn: Callable, name: str, identity: str | None, static_argnames: tuple[str, ...] = ()) -> Callable:
    """`jax.jit(fn, static_argnames=...)`, with its lowered programs kept on disk while the cache is enabled.

    Args:
      fn: a pure function of pytrees of arrays (static arguments by keyword or position, named in
        static_argnames); its result is a pytree of arrays.
      name: the program's name in file names and keys.
      identity: everything `fn` closes over that changes its trace, as a string; None never uses the disk.

    Returns:
      a callable with fn's signature; `.jitted` is the plain jit (to lower or inspect the program), and
      `.cache_size()` the number of programs compiled for it so far, through either path (one per signature).
    """
    jitted = jax.jit(fn, static_argnames=static_argnames)
    signature = inspect.signature(fn)
    loaded: dict[Any, _Program] = {}

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if _DIRECTORY is None or identity is None:
            return jitted(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        static = tuple((k, bound.arguments[k]) for k in static_argnames)
        dynamic = {k: v for k, v in bound.arguments.items() if k not in static_argnames}
        leaves, tree = jax.tree.flatten(dynamic)
        shapes = tuple(_leaf_signature(leaf) for leaf in leaves)
        if any(s is None for s in shapes):
            return jitted(*args, **kwargs)
        local = (tree, shapes, static)
        program = loaded.get(local)
        if program is None:
            program = loaded[local] = _load_or_export(fn, name, identity, tree, leaves, shapes, dict(static))
        return program(leaves)

    call.jitted = jitted
    call.cache_size = lambda: len(loaded) + jitted._cache_size()  # programs compiled for this function so far
    return call


def _load_or_export(fn, name, identity, tree, leaves, shapes, static) -> _Program:
    key = hashlib.sha256("\n".join([name, identity, str(tree), repr(shapes), repr(sorted(static.items())),
                                    _environment()]).encode()).hexdigest()
    path = _DIRECTORY / f"{name}-{key}{SUFFIX}"
    if path.is_file():
        try:
            with open(path, "rb") as f:
                record = pickle.load(f)
            return _Program(jax.export.deserialize(bytearray(record["program"])), record["out_tree"])
        except Exception as e:  # a truncated or corrupt file, or one of another format: trace again
            warnings.warn(f"jaxphysvae: ignoring the unreadable cached program {path} ({type(e).__name__}: {e}); "
                          f"tracing it again", RuntimeWarning, stacklevel=3)
    out_tree = []

    def flat(*leaves):
        out = fn(**jax.tree.unflatten(tree, leaves), **static)
        out_leaves, treedef = jax.tree.flatten(out)
        out_tree.append(treedef)
        return out_leaves

    exported = jax.export.export(jax.jit(flat))(*leaves)
    _write(path, {"program": exported.serialize(), "out_tree": out_tree[0]})
    return _Program(exported, out_tree[0])


def _write(path: Path, record: dict) -> None:
    """Write atomically (concurrent processes may write the same program); a failure to write only warns."""
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                pickle.dump(record, f, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as e:
        warnings.warn(f"jaxphysvae: cannot keep the traced program in {path.parent} ({e}); the next run traces it "
                      f"again", RuntimeWarning, stacklevel=4)
