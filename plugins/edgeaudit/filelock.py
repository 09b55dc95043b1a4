"""An exclusive advisory lock on an open file, where the platform has one (flock on POSIX).
Windows has no fcntl: there no lock is taken, so that the package still imports and runs."""

from __future__ import annotations

import contextlib
from typing import IO, Any, Iterator

try:
    import fcntl
except ImportError:  # Windows: no flock; concurrent writers are not kept apart
    fcntl = None  # type: ignore[assignment]


@contextlib.contextmanager
def locked(handle: IO[Any]) -> Iterator[None]:
    """Hold an exclusive lock on `handle` while the block runs (no lock without fcntl)."""
    if fcntl is None:
        yield
        return
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
