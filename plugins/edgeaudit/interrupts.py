"""Ctrl-C that cannot leave scratch objects behind or lose the report.

The first SIGINT or SIGTERM of a run stops it as usual (KeyboardInterrupt). What follows it,
removing the drill's scratch objects and writing the report marked incomplete, must not be cut
short by the next one: an operator presses Ctrl-C two or three times in a row. Interrupts that
arrive while the run winds down, or inside a `Deferred` block, are held; only SIGKILL abandons
the clean-up.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
NOTICE = "edgeaudit: interrupted again; finishing the clean-up and the report first (kill -9 abandons both)\n"


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _restore(saved: dict[int, Any]) -> None:
    for signum, handler in saved.items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    saved.clear()


class Deferred:
    """`with Deferred():` SIGINT and SIGTERM arriving inside the block are held, and handed to
    the handler they interrupted when it ends (a KeyboardInterrupt, as a rule; not when the block
    raised, nor with `reraise=False`). Signals reach Python only in the main thread: elsewhere
    there is nothing to hold."""

    def __init__(self, reraise: bool = True) -> None:
        self.reraise = reraise
        self.held: list[int] = []
        self._saved: dict[int, Any] = {}

    def _hold(self, signum: int, frame: Any) -> None:
        if not self.held:
            sys.stderr.write(NOTICE)
        self.held.append(signum)

    def __enter__(self) -> "Deferred":
        if _main_thread():
            for signum in SIGNALS:
                self._saved[signum] = signal.signal(signum, self._hold)
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        previous = self._saved.get(self.held[0]) if self.held else None
        _restore(self._saved)
        if not (self.held and self.reraise and exc_type is None):
            return
        if callable(previous):
            previous(self.held[0], None)  # Python's default raises; a run that is stopping holds it
        else:
            raise KeyboardInterrupt(f"signal {self.held[0]}, held during clean-up")


class RunInterrupts:
    """The run's handler: the first signal raises KeyboardInterrupt, later ones are held, so
    that the unwinding run still cleans up and writes its report."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        if len(self.received) == 1:
            raise KeyboardInterrupt(f"signal {signum}")
        if len(self.received) == 2:
            sys.stderr.write(NOTICE)

    def install(self) -> None:
        if _main_thread() and not self._saved:
            for signum in SIGNALS:
                self._saved[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        if _main_thread():
            _restore(self._saved)
