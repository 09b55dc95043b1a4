"""Finding and starting the system's headless Chromium (Playwright drives it; no browser is
downloaded). The report's own tests use it, and so do the lab measurements of page speed."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

from . import __version__
from .filelock import locked

# The lab's own User-Agent: the edge's logs (and the tests' request counts) tell its fetches apart.
LAB_USER_AGENT = f"Mozilla/5.0 (X11; Linux x86_64) edgeaudit/{__version__} (lab vitals)"
INSTALL_HINT = ("install Chromium (Debian/Ubuntu: apt-get install chromium) or name it with the target's "
                "browser_path or $EDGEAUDIT_CHROMIUM")
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# Flags for a closed network and a root user: no sandbox, no background traffic, no first-run UI.
FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")


def find_chromium(configured: str | None = None) -> str | None:
    """The configured path, then $EDGEAUDIT_CHROMIUM, then /usr/bin/chromium and the usual names."""
    for candidate in (configured, os.environ.get("EDGEAUDIT_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def launch(playwright: Any, executable: str) -> Any:
    """A headless Chromium browser from `playwright.chromium`."""
    return playwright.chromium.launch(executable_path=executable, headless=True, args=list(FLAGS))


LAB_LOCK = Path(tempfile.gettempdir()) / "edgeaudit-lab.lock"


@contextlib.contextmanager
def lab_slot(lock_file: Path = LAB_LOCK) -> Iterator[None]:
    """One lab page load at a time on this machine. Chromium's CPU throttling stretches any CPU
    time the load has to share (another xdist worker's Chromium, another run) into a slower page,
    so parallel workers take turns for their page loads while the rest of their work goes on."""
    try:
        handle = open(lock_file, "a")
    except OSError:  # no writable temp dir: loads overlap
        yield
        return
    with handle, locked(handle):  # a platform without fcntl (Windows) takes no lock: loads overlap
        yield


@contextlib.contextmanager
def one_browser(executable: str) -> Iterator[Any]:
    """Playwright and a browser for one use, both closed after it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, executable)
        try:
            yield browser
        finally:
            browser.close()


class SharedBrowser:
    """One headless Chromium per process, started on first use and kept until `close()`: a
    fleet's targets are measured one after another, and starting Playwright and a browser for
    each costs about a second of CPU. Playwright's sync API belongs to the thread that started
    it; another thread gets a browser of its own for the duration of its use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._playwright: Any = None
        self._owner: int | None = None
        self._browsers: dict[str, Any] = {}

    @contextlib.contextmanager
    def use(self, executable: str) -> Iterator[Any]:
        from playwright.sync_api import sync_playwright

        with self._lock:
            if self._owner is None:
                self._playwright, self._owner = sync_playwright().start(), threading.get_ident()
        if self._owner != threading.get_ident():
            with one_browser(executable) as browser:
                yield browser
            return
        browser = self._browsers.get(executable)
        if browser is None or not browser.is_connected():  # first use, or a browser that crashed
            browser = self._browsers[executable] = launch(self._playwright, executable)
        yield browser

    def close(self) -> None:
        """Close the browsers and Playwright (the owning thread calls this at the end of the run)."""
        with self._lock:
            if self._owner is None or self._owner != threading.get_ident():
                return
            for browser in self._browsers.values():
                with contextlib.suppress(Exception):
                    browser.close()
            with contextlib.suppress(Exception):
                self._playwright.stop()
            self._playwright, self._owner, self._browsers = None, None, {}


SHARED = SharedBrowser()
