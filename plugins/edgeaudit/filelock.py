"""An exclusive lock between processes, on every platform: the `filelock` package takes flock on
POSIX, msvcrt's lock on Windows, and a lock file of its own where neither exists."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import filelock


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock named by `lock_file` while the block runs (waits for it). The lock
    file is its own: never the data it guards (a lock may truncate or remove its file)."""
    with filelock.FileLock(lock_file):
        yield
