"""Debian's Chromium driven by Playwright, for the real-browser tests (the rendered book,
JupyterLab): where Chromium is, how to skip without it, and how to start it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
INSTALL = ("install Debian's Chromium to run the real-browser test: `sudo apt-get install "
           "chromium` (.ci/run does this in CI)")

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=INSTALL)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``), closed on exit."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -r requirements.txt")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()
