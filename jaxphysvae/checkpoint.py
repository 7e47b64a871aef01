"""Checkpoints: a pytree plus metadata in one msgpack file, written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import flax.serialization
import jax
import numpy as np

from jaxphysvae.files import atomic_path
from jaxphysvae.errors import DataError


def save(path: str | os.PathLike, tree, meta: dict) -> None:
    """Write `tree` (any pytree of arrays) and JSON-like `meta` to `path` atomically."""
    payload = {"tree": flax.serialization.to_state_dict(jax.device_get(tree)), "meta": meta}
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(flax.serialization.msgpack_serialize(payload))


def _payload(path: Path) -> dict:
    """The decoded file: {"tree": state dict, "meta": ...}; a missing or undecodable file is a DataError."""
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        payload = flax.serialization.msgpack_restore(path.read_bytes())
    except Exception as e:
        raise DataError(f"{path}: corrupt or incompatible checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(payload, dict) or not {"tree", "meta"} <= payload.keys():
        raise DataError(f"{path}: corrupt or incompatible checkpoint (no tree and metadata in it)")
    return payload


def _upgraded(node, upgrade: Callable[[dict], dict]):
    """`node` (a stored state dict) with `upgrade` applied to each of its dicts, outermost first."""
    if not isinstance(node, dict):
        return node
    return {k: _upgraded(v, upgrade) for k, v in upgrade(node).items()}


def load(path: str | os.PathLike, template, upgrade: Callable[[dict], dict] | None = None) -> tuple[object, dict]:
    """Read a checkpoint into the structure of `template`; return (tree, meta). `upgrade`, if given, rewrites each
    dict of the stored tree before it is matched to `template` (a file written before a field was added: e.g.
    jaxphysvae.train.with_parameter_average)."""
    path = Path(path)
    payload = _payload(path)
    stored = payload["tree"] if upgrade is None else _upgraded(payload["tree"], upgrade)
    try:
        tree = flax.serialization.from_state_dict(template, stored)
    except Exception as e:
        raise DataError(f"{path}: corrupt or incompatible checkpoint ({type(e).__name__}: {e})") from None
    shapes = jax.tree.map(np.shape, template), jax.tree.map(np.shape, tree)
    if shapes[0] != shapes[1]:
        raise DataError(f"{path}: checkpoint shapes do not match this model's configuration")
    return tree, payload["meta"]


def read_meta(path: str | os.PathLike) -> dict:
    """The JSON-like metadata of a checkpoint, without a template for its tree."""
    return _payload(Path(path))["meta"]
