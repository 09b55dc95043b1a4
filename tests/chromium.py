"""Headless Chromium for the tests that read a page as a person would: found the way edgeaudit
finds it, and never skipped under CI (CI installs Debian's chromium)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from edgeaudit.web.browser import find_chromium, launch

CHROMIUM = find_chromium()
if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must install Debian's chromium: the report's browser tests may not skip there")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")


def chromium() -> Iterator[Any]:
    """A headless browser for a module's tests (use as the body of a module-scoped fixture)."""
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright, CHROMIUM)
        yield browser
        browser.close()
