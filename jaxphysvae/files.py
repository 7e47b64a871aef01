"""File I/O shared by every part of the package: atomic writes (no partially written file is ever left behind, a
crash or an interrupt included) and JSON records read with one-line errors."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from jaxphysvae.errors import ConfigError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on any error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path, what: str, expected: type = dict) -> dict | list:
    """A JSON record (config.json, summary.json, ...) with a one-line error for a missing or corrupt file, or one
    whose top level is not `expected` (an object; `list` for a table of rows)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what} ({e.strerror})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: {what} is corrupt (not valid JSON: {e.msg} at line {e.lineno}); restore it or "
                          f"start a new run") from None
    if not isinstance(value, expected):
        raise ConfigError(f"{path}: {what} is corrupt (expected a JSON {'list' if expected is list else 'object'})")
    return value


def write_json(path: Path, value) -> None:
    """Write `value` as indented JSON, atomically (no half-written file is ever left)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2) + "\n")
