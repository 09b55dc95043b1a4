"""Finding and starting a headless Chromium already on the machine (Playwright drives it; no
browser is downloaded). The report's own tests use it, and so do the lab measurements of page speed."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping

from edgeaudit import __version__
from edgeaudit.errors import ConfigError
from edgeaudit.filelock import locked

# The lab's own User-Agent: the edge's logs (and the tests' request counts) tell its fetches apart.
LAB_USER_AGENT = f"Mozilla/5.0 (X11; Linux x86_64) edgeaudit/{__version__} (lab vitals)"
LAB_EXTRA_MISSING = ("the lab measurements need Playwright for Python, which is not installed: "
                     "pip install 'edgeaudit[lab]'")
PLAYWRIGHT_INSTALL = "python -m playwright install chromium"
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# Where each system installs its browser, under the file-system root (Linux), or under
# /Applications and ~/Applications (macOS); Windows' folders come from its environment.
LINUX_PATHS = ("usr/bin/chromium", "usr/bin/chromium-browser", "usr/bin/google-chrome", "snap/bin/chromium")
MAC_APPS = ("Google Chrome.app/Contents/MacOS/Google Chrome", "Chromium.app/Contents/MacOS/Chromium")
WINDOWS_CHROME = "Google/Chrome/Application/chrome.exe"
# `python -m playwright install chromium` unpacks into <cache>/chromium-<rev>/ and
# <cache>/chromium_headless_shell-<rev>/; the layout inside depends on the platform and the release.
MANAGED: dict[str, dict[str, tuple[str, ...]]] = {
    "chromium": {
        "linux": ("chrome-linux64/chrome", "chrome-linux-arm64/chrome", "chrome-linux/chrome"),
        "darwin": ("chrome-mac-arm64/Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing",
                   "chrome-mac-x64/Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing",
                   "chrome-mac/Chromium.app/Contents/MacOS/Chromium"),
        "win32": ("chrome-win64/chrome.exe", "chrome-win/chrome.exe"),
    },
    "chromium_headless_shell": {
        "linux": ("chrome-headless-shell-linux64/chrome-headless-shell",
                  "chrome-headless-shell-linux-arm64/chrome-headless-shell", "chrome-linux/headless_shell"),
        "darwin": ("chrome-headless-shell-mac-arm64/chrome-headless-shell",
                   "chrome-headless-shell-mac-x64/chrome-headless-shell", "chrome-mac/headless_shell"),
        "win32": ("chrome-headless-shell-win64/chrome-headless-shell.exe", "chrome-win/headless_shell.exe"),
    },
}
# Flags for a closed network: no background traffic, no first-run UI.
FLAGS = ("--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage")
# Chromium runs in its sandbox unless this says "off": as root, or in a container whose seccomp
# profile refuses the namespaces the sandbox needs, Chromium cannot start it, and the error says so.
SANDBOX_SETTING = "EDGEAUDIT_CHROMIUM_SANDBOX"
_SWITCH = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def family(platform: str = sys.platform) -> str:
    """The platform's family: win32, darwin or linux (every other Unix looks where Linux does)."""
    return "win32" if platform in ("win32", "cygwin") else "darwin" if platform == "darwin" else "linux"


def install_hint(platform: str = sys.platform) -> str:
    """The one command that puts a Chromium where find_chromium looks, on this platform."""
    system = {"linux": f"sudo apt-get install chromium (Debian/Ubuntu) or {PLAYWRIGHT_INSTALL}",
              "darwin": f"install Google Chrome, or brew install --cask chromium, or {PLAYWRIGHT_INSTALL}",
              "win32": f"install Google Chrome, or {PLAYWRIGHT_INSTALL}"}[family(platform)]
    return f"{system}; or name one with the target's browser_path or $EDGEAUDIT_CHROMIUM"


def executable_file(path: str | os.PathLike[str]) -> bool:
    """A file this user may run (a folder or a dangling link is no browser)."""
    return Path(path).is_file() and os.access(path, os.X_OK)


def find_chromium(configured: str | None = None, *, platform: str = sys.platform, home: Path | None = None,
                  environ: Mapping[str, str] | None = None, root: Path = Path("/")) -> str | None:
    """The first executable of `candidates()`: where users have Chromium, most specific first."""
    return next((os.fspath(path) for path in candidates(configured, platform=platform, home=home,
                                                        environ=environ, root=root) if executable_file(path)), None)


def candidates(configured: str | None = None, *, platform: str = sys.platform, home: Path | None = None,
               environ: Mapping[str, str] | None = None, root: Path = Path("/")) -> Iterator[str | Path]:
    """The configured path, $EDGEAUDIT_CHROMIUM, the usual names on PATH, the system's install
    locations, then the browsers `python -m playwright install chromium` manages (newest first).
    `platform`, `home`, `environ` and `root` default to this machine's (tests pass their own)."""
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    yield from (given for given in (configured, environ.get("EDGEAUDIT_CHROMIUM")) if given)
    yield from (found for name in NAMES if (found := shutil.which(name, path=environ.get("PATH", ""))))
    system = family(platform)
    if system == "linux":
        yield from (root / path for path in LINUX_PATHS)
    elif system == "darwin":
        yield from (folder / app for folder in (root / "Applications", home / "Applications") for app in MAC_APPS)
    else:
        local = environ.get("LOCALAPPDATA") or home / "AppData" / "Local"
        for folder in (environ.get("ProgramFiles") or "C:/Program Files",
                       environ.get("ProgramFiles(x86)") or "C:/Program Files (x86)", local):
            yield Path(folder) / WINDOWS_CHROME
    yield from managed_browsers(playwright_cache(platform, home, environ), platform)


def playwright_cache(platform: str, home: Path, environ: Mapping[str, str]) -> Path | None:
    """Where Playwright keeps the browsers it installs: $PLAYWRIGHT_BROWSERS_PATH ("0": inside the
    installed package), else the platform's cache folder, as Playwright itself decides."""
    chosen = environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if chosen == "0":
        return _package_browsers()
    if chosen:
        return Path(chosen)
    system = family(platform)
    if system == "darwin":
        return home / "Library" / "Caches" / "ms-playwright"
    if system == "win32":
        return Path(environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "ms-playwright"
    return Path(environ.get("XDG_CACHE_HOME") or home / ".cache") / "ms-playwright"


def _package_browsers() -> Path | None:
    """playwright/driver/package/.local-browsers, found without importing Playwright."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("playwright")
    except (ImportError, ValueError):  # not installed, or blocked
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "driver" / "package" / ".local-browsers"


def managed_browsers(cache: Path | None, platform: str = sys.platform) -> Iterator[Path]:
    """The Chromium executables in Playwright's cache: full Chromium before the headless shell,
    each newest revision first."""
    try:
        folders = list(cache.iterdir()) if cache else []
    except OSError:  # no cache, or one this user cannot read
        return
    for kind, layouts in MANAGED.items():
        revisions = [(int(rev), folder) for folder in folders
                     if (rev := folder.name.removeprefix(kind + "-")) != folder.name and rev.isdigit()]
        for _, folder in sorted(revisions, reverse=True):
            yield from (folder / layout for layout in layouts[family(platform)])


def sandboxed(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether Chromium keeps its sandbox (EDGEAUDIT_CHROMIUM_SANDBOX, default on); ConfigError on a
    value that is neither a yes nor a no."""
    raw = environ.get(SANDBOX_SETTING, "on")
    if raw.strip().lower() not in _SWITCH:
        raise ConfigError("environment", f"{SANDBOX_SETTING}={raw!r}", "not a yes or a no",
                          f"set {SANDBOX_SETTING} to on (the default) or off, or unset it")
    return _SWITCH[raw.strip().lower()]


def launch(playwright: Any, executable: str) -> Any:
    """A headless Chromium browser from `playwright.chromium`, in its sandbox unless the setting
    turns it off; a sandbox that cannot start is one line that names the setting."""
    sandbox = sandboxed()
    try:
        return playwright.chromium.launch(executable_path=executable, headless=True, chromium_sandbox=sandbox,
                                          args=[*FLAGS, *([] if sandbox else ["--no-sandbox"])])
    except Exception as exc:
        if sandbox and "sandbox" in str(exc).lower():
            raise RuntimeError(f"Chromium could not start its sandbox (as root, or in a container that refuses "
                               f"its namespaces): run as another user where the kernel allows it, or set "
                               f"{SANDBOX_SETTING}=off") from None
        raise


LAB_LOCK = Path(tempfile.gettempdir()) / "edgeaudit-lab.lock"


@contextlib.contextmanager
def lab_slot(lock_file: Path = LAB_LOCK) -> Iterator[None]:
    """One lab page load at a time on this machine. Chromium's CPU throttling stretches any CPU
    time the load has to share (another xdist worker's Chromium, another run) into a slower page,
    so parallel workers take turns for their page loads while the rest of their work goes on."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked(lock_file))
        except OSError:  # no writable temp dir: loads overlap
            pass
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
