"""Finding and starting the system's headless Chromium (Playwright drives it; no browser is
downloaded). The report's own tests use it, and so do the lab measurements of page speed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from . import __version__

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
