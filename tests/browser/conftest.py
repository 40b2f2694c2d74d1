"""Browser-test fixtures: a real server (child process, loopback port) and Debian's headless Chromium."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from .harness import CHROMIUM, SCREENSHOTS, Server, launch_browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    if not os.path.exists(CHROMIUM):  # no browser to drive: don't start a server for nothing
        pytest.skip(f"{CHROMIUM} is absent (install Debian's chromium: scripts/init.sh)")
    srv = Server(tmp_path_factory.mktemp("server")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent (install Debian's chromium: scripts/init.sh)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS

