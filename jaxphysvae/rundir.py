"""Run directories: one owner at a time, outputs checked before any compute, records read with clear errors, and
the identity of the data a run was trained on.

Every command that writes into a directory (`train`, `sweep`, `eval`) first makes sure it can (`prepare`), then
holds an OS file lock on it for as long as it writes (`RunLock`): a second process is refused with a one-line
error, and the lock is released on any exit, a crash or SIGKILL included, so it is never stale.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from jaxphysvae.files import atomic_path
from jaxphysvae.errors import ConfigError

LOCK_FILE = ".lock"
MAX_SEED = 2**32 - 1  # jax.random.key(s) keeps the low 32 bits of s unless 64-bit mode is on: 2**32 would alias 0


def check_seed(seed) -> int:
    """`seed` as an int in [0, 2**32 - 1], else a ConfigError (larger seeds would silently alias smaller ones)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
        raise ConfigError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
    return int(seed)


def check_checkpoint_schedule(every, seconds) -> None:
    """A ConfigError unless `every` is a positive number of epochs and `seconds` a positive time."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(f"checkpoint_every must be a positive number of epochs, got {every!r}")
    if not seconds > 0:
        raise ConfigError(f"checkpoint_seconds must be positive, got {seconds!r}")


def prepare(directory: str | os.PathLike, what: str = "output directory") -> Path:
    """Create `directory` if needed and check that files can be written into it, before anything is computed.

    Raises:
      ConfigError: the path is a file, lies under a file, or cannot be created or written (read-only, no
        permission).
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{what} {directory} is a file, not a directory; choose another path")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{what} {directory} lies under a file; choose another path") from None
    except NotADirectoryError:
        raise ConfigError(f"{what} {directory} lies under a file; choose another path") from None
    except PermissionError:
        raise ConfigError(f"{what} {directory} cannot be created: permission denied") from None
    except OSError as e:
        raise ConfigError(f"{what} {directory} cannot be created ({e.strerror})") from None
    check_writable(directory, what)
    return directory


def check_writable(directory: Path, what: str = "output directory") -> None:
    """Raise a ConfigError unless a file can be created in the existing `directory`."""
    probe = directory / f".write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        reason = "read-only or no permission" if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else e.strerror
        raise ConfigError(f"cannot write into {what} {directory} ({reason})") from None


class RunLock:
    """An exclusive lock on a directory, held for the life of a run (`with RunLock(path): ...`).

    It is an advisory `flock` on `path/.lock`: the operating system releases it when the process ends, however it
    ends, so a crashed run never leaves the directory locked. The lock file records the owner's pid.
    """

    def __init__(self, directory: str | os.PathLike):
        self.path = Path(directory) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        try:
            import fcntl
        except ImportError:  # not a POSIX system: no lock, as before
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(f"{self.path.parent} is in use by another jaxphysvae process (pid {owner}); wait for "
                              f"it to finish or choose another directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def read_metrics(path: Path) -> tuple[list[dict], int]:
    """The rows of a metrics.jsonl log and the number of unreadable lines dropped (a crash mid-write leaves a
    partial last line)."""
    if not path.is_file():
        return [], 0
    rows, dropped = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            dropped += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("epoch"), int):
            rows.append(row)
        else:
            dropped += 1
    return rows, dropped


def rewrite_metrics(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))


def data_identity(splits: dict) -> dict:
    """What identifies each split's data: {split: {"source", "shape", "sha256"}}, the hash over the float32 values
    the model sees (so the same numbers from another path are the same data)."""
    return {name: {"source": ds.source, "shape": list(ds.x.shape),
                   "sha256": hashlib.sha256(np.ascontiguousarray(ds.x, "<f4").tobytes()).hexdigest()}
            for name, ds in splits.items()}


def data_differences(stored: dict, current: dict) -> list[str]:
    """The splits whose data differ between two `data_identity` records (empty when they agree). A record from an
    older version without hashes (a plain source string per split) cannot be checked and agrees."""
    differ = []
    for split, now in current.items():
        then = stored.get(split)
        if not isinstance(then, dict) or "sha256" not in then:
            continue
        if then["sha256"] != now["sha256"] or list(then["shape"]) != list(now["shape"]):
            differ.append(f"{split} (trained on {tuple(then['shape'])} from {then['source']}, now "
                          f"{tuple(now['shape'])} from {now['source']})")
    return differ
