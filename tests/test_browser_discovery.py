"""A browser on a fresh machine: find_chromium looks where users have Chromium (the configured
path, $EDGEAUDIT_CHROMIUM, PATH, the system's install locations, Playwright's managed browsers)
in that order, on Linux, macOS and Windows, each layout built here as executable files; the
Chromium it finds on this machine launches headless; and without the `lab` extra (no Playwright)
the lab controls end not evaluated with one line saying how to add it, the rest of the run as usual."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from test_demo_extra import UNINSTALL, plugin

from conftest import REPO, run_suite
from edgeaudit.errors import NotEvaluated
from edgeaudit.rules.config import Target
from edgeaudit.web.browser import (
    LAB_EXTRA_MISSING,
    PLAYWRIGHT_INSTALL,
    find_chromium,
    install_hint,
    one_browser,
    playwright_cache,
)
from edgeaudit.web.vitals import measure


def executable(path: Path, mode: int = 0o755) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def found_in_order(tmp_path: Path, platform: str, environ: dict[str, str], configured: str | None = None) -> list[str]:
    """What find_chromium finds, then finds again once that one is removed, until nothing is left."""
    seen = []
    while (found := find_chromium(configured, platform=platform, home=tmp_path / "home", environ=environ,
                                  root=tmp_path / "root")) is not None:
        seen.append(os.path.relpath(found, tmp_path))
        Path(found).unlink()
    return seen


def test_linux_search_order(tmp_path):
    expected = ["opt/my-chromium", "env/chromium", "bin/chromium", "bin/google-chrome",
                "root/usr/bin/chromium", "root/usr/bin/chromium-browser", "root/usr/bin/google-chrome",
                "root/snap/bin/chromium",
                # newest revision first (1200 > 1187 > 99, not as text); the newer layout, then the old
                "home/.cache/ms-playwright/chromium-1200/chrome-linux64/chrome",
                "home/.cache/ms-playwright/chromium-1187/chrome-linux/chrome",
                "home/.cache/ms-playwright/chromium-99/chrome-linux/chrome",
                # the headless shell only when no full Chromium is left
                "home/.cache/ms-playwright/chromium_headless_shell-1200/chrome-headless-shell-linux64/chrome-headless-shell",
                "home/.cache/ms-playwright/chromium_headless_shell-1187/chrome-linux/headless_shell"]
    for relative in reversed(expected):
        executable(tmp_path / relative)
    cache = tmp_path / "home/.cache/ms-playwright"
    executable(cache / "chromium-1300/chrome-linux64/chrome", mode=0o644)  # not executable: skipped
    executable(cache / "chromium_tip_of_tree-1400/chrome-linux64/chrome")  # another channel: ignored
    executable(cache / "chromium-1200/chrome-mac/Chromium.app/Contents/MacOS/Chromium")  # another platform's
    (cache / "chromium-1250").mkdir()  # an interrupted install
    environ = {"EDGEAUDIT_CHROMIUM": str(tmp_path / "env/chromium"), "PATH": str(tmp_path / "bin")}
    assert found_in_order(tmp_path, "linux", environ, configured=str(tmp_path / "opt/my-chromium")) == expected


def test_macos_search_order(tmp_path):
    testing = "Google Chrome for Testing.app/Contents/MacOS/Google Chrome for Testing"
    expected = ["bin/chromium",
                "root/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
                "root/Applications/Chromium.app/Contents/MacOS/Chromium",
                "home/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
                "home/Applications/Chromium.app/Contents/MacOS/Chromium",
                f"home/Library/Caches/ms-playwright/chromium-1200/chrome-mac-arm64/{testing}",
                f"home/Library/Caches/ms-playwright/chromium-1200/chrome-mac-x64/{testing}",
                "home/Library/Caches/ms-playwright/chromium-1100/chrome-mac/Chromium.app/Contents/MacOS/Chromium",
                "home/Library/Caches/ms-playwright/chromium_headless_shell-1200/chrome-headless-shell-mac-arm64/"
                "chrome-headless-shell",
                "home/Library/Caches/ms-playwright/chromium_headless_shell-1100/chrome-mac/headless_shell"]
    for relative in expected:
        executable(tmp_path / relative)
    executable(tmp_path / "home/.cache/ms-playwright/chromium-1300/chrome-linux64/chrome")  # Linux's cache
    assert found_in_order(tmp_path, "darwin", {"PATH": str(tmp_path / "bin")}) == expected


def test_windows_search_order(tmp_path):
    expected = ["pf/Google/Chrome/Application/chrome.exe", "pf86/Google/Chrome/Application/chrome.exe",
                "local/Google/Chrome/Application/chrome.exe",
                "local/ms-playwright/chromium-1200/chrome-win64/chrome.exe",
                "local/ms-playwright/chromium-1100/chrome-win/chrome.exe",
                "local/ms-playwright/chromium_headless_shell-1200/chrome-headless-shell-win64/chrome-headless-shell.exe",
                "local/ms-playwright/chromium_headless_shell-1100/chrome-win/headless_shell.exe"]
    for relative in expected:
        executable(tmp_path / relative)
    environ = {"ProgramFiles": str(tmp_path / "pf"), "ProgramFiles(x86)": str(tmp_path / "pf86"),
               "LOCALAPPDATA": str(tmp_path / "local")}
    assert found_in_order(tmp_path, "win32", environ) == expected


def test_windows_without_localappdata_looks_in_the_home_folder(tmp_path):
    managed = executable(tmp_path / "home/AppData/Local/ms-playwright/chromium-1200/chrome-win64/chrome.exe")
    assert find_chromium(platform="win32", home=tmp_path / "home", environ={}, root=tmp_path) == str(managed)


def test_playwright_browsers_path_replaces_the_default_cache(tmp_path):
    executable(tmp_path / "home/.cache/ms-playwright/chromium-1300/chrome-linux64/chrome")
    chosen = executable(tmp_path / "shared/chromium-1100/chrome-linux/chrome")
    search = {"platform": "linux", "home": tmp_path / "home", "root": tmp_path / "root"}
    assert find_chromium(environ={"PLAYWRIGHT_BROWSERS_PATH": str(tmp_path / "shared")}, **search) == str(chosen)
    # on Linux, Playwright's cache follows $XDG_CACHE_HOME
    xdg = executable(tmp_path / "xdg/ms-playwright/chromium-1000/chrome-linux/chrome")
    assert find_chromium(environ={"XDG_CACHE_HOME": str(tmp_path / "xdg")}, **search) == str(xdg)


def test_playwright_browsers_path_zero_means_inside_the_package(tmp_path):
    playwright = pytest.importorskip("playwright", reason="playwright is part of the dev extras")
    package = Path(playwright.__file__).parent / "driver" / "package" / ".local-browsers"
    assert playwright_cache("linux", tmp_path, {"PLAYWRIGHT_BROWSERS_PATH": "0"}) == package


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_nothing_found_names_the_command_for_the_platform(tmp_path, platform):
    assert find_chromium(platform=platform, home=tmp_path, environ={}, root=tmp_path) is None
    command = {"linux": "sudo apt-get install chromium", "darwin": "brew install --cask chromium",
               "win32": "install Google Chrome"}[platform]
    hint = install_hint(platform)
    assert command in hint and PLAYWRIGHT_INSTALL in hint and "browser_path or $EDGEAUDIT_CHROMIUM" in hint


def test_the_chromium_found_on_this_machine_launches_headless():
    pytest.importorskip("playwright.sync_api", reason="playwright is part of the dev extras")
    executable_path = find_chromium()
    if executable_path is None and os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's chromium: the browser tests may not skip there")
    if executable_path is None:
        pytest.skip("no Chromium on this machine (sudo apt-get install chromium)")
    with one_browser(executable_path) as browser:
        page = browser.new_page()
        assert "HeadlessChrome" in page.evaluate("navigator.userAgent")
        assert browser.version.split(".")[0].isdigit()


def test_without_playwright_the_lab_is_not_evaluated_with_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "playwright", None)  # as if never installed: every import of it fails
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)
    vitals = measure(Target("www", "https://www.example.com/", "b", "E1"), runs=1)
    assert vitals.pages == {} and vitals.lab_error == LAB_EXTRA_MISSING
    with pytest.raises(NotEvaluated) as raised:
        vitals.lab()
    assert len(str(raised.value).splitlines()) == 1 and "pip install 'edgeaudit[lab]'" in str(raised.value)


def test_first_run_without_the_lab_extra(tmp_path):
    """`pytest -m daily --demo` with Playwright uninstalled: the lab controls end `error` with one
    line saying how to add the extra; every other control ends as docs/getting-started.md documents."""
    env = {**plugin(tmp_path, "uninstall", UNINSTALL), "GONE_MODULES": "playwright"}
    run = run_suite("-p", "uninstall", "-m", "daily", "--demo", cwd=REPO, env=env, report_dir=tmp_path / "reports")
    assert run.returncode == 1, run.output
    report = run.report
    assert report["complete"] is True
    lab = {f"EA-PERF-0{n}" for n in range(1, 6)}
    documented = {"EA-TLS-01": "warned", "EA-HDR-06": "failed", "EA-SITE-04": "failed"}
    outcomes = {r["control"]: r["outcome"] for r in report["results"]}
    assert lab <= set(outcomes) and len(outcomes) > len(lab) + len(documented), outcomes
    assert outcomes == {control: "error" if control in lab else documented.get(control, "passed")
                        for control in outcomes}
    for result in report["results"]:
        if result["control"] in lab:
            assert len(result["message"].splitlines()) == 1, result["message"]
            assert "pip install 'edgeaudit[lab]'" in result["message"]


# --- the sandbox ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [(None, True), ("on", True), ("off", False), ("0", False),
                                                  ("YES", True)])
def test_chromium_keeps_its_sandbox_unless_the_setting_says_off(value, expected):
    from edgeaudit.web.browser import SANDBOX_SETTING, sandboxed

    assert sandboxed({} if value is None else {SANDBOX_SETTING: value}) is expected


def test_a_sandbox_setting_that_is_no_yes_or_no_is_a_config_error():
    from edgeaudit.errors import ConfigError
    from edgeaudit.web.browser import SANDBOX_SETTING, sandboxed

    with pytest.raises(ConfigError, match="EDGEAUDIT_CHROMIUM_SANDBOX='maybe': not a yes or a no"):
        sandboxed({SANDBOX_SETTING: "maybe"})


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or find_chromium() is None,
                    reason="as root, with a Chromium: the sandbox cannot start")
def test_as_root_the_sandbox_cannot_start_and_the_error_names_the_setting(monkeypatch):
    from playwright.sync_api import sync_playwright

    from edgeaudit.web.browser import launch

    monkeypatch.setenv("EDGEAUDIT_CHROMIUM_SANDBOX", "on")
    with sync_playwright() as playwright, pytest.raises(RuntimeError, match="set EDGEAUDIT_CHROMIUM_SANDBOX=off"):
        launch(playwright, find_chromium())
    monkeypatch.setenv("EDGEAUDIT_CHROMIUM_SANDBOX", "off")
    with sync_playwright() as playwright:
        launch(playwright, find_chromium()).close()
