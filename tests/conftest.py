"""Shared fixtures: one in-process app server for client and browser tests, a Chromium page, artifacts."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the real Hub; the fake one is opt-in
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_server():
    """The real app (build_app + launch_kwargs) on a free local port, for the whole session: (demo, url)."""
    import app as app_module

    demo = app_module.build_app()
    kw = app_module.launch_kwargs(host="127.0.0.1", port=free_port())
    demo.launch(prevent_thread_lock=True, quiet=True, **kw)
    yield demo, demo.local_url.rstrip("/")
    demo.close()


@pytest.fixture(scope="session")
def app_url(app_server):
    return app_server[1]


@pytest.fixture(scope="session")
def app_demo(app_server):
    """The Blocks behind app_url (to find an event's fn_index, as an attacker reading /config would)."""
    return app_server[0]


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url, request):
    """A fresh page on the app; a screenshot is saved to test-artifacts/ after each browser test."""
    ctx = browser.new_context(viewport={"width": 1300, "height": 1100})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    pg.goto(app_url, wait_until="domcontentloaded")
    pg.wait_for_selector(".gradio-container", state="visible")
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    ctx.close()


def open_tab(page, title: str) -> None:
    """Click a top-level tab by its title."""
    page.get_by_role("tab", name=title, exact=True).first.click()


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """A local Hub (tests/fakehub.py) as HF_ENDPOINT, online mode, with an empty private cache."""
    from tests.fakehub import FakeHub

    with FakeHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        import huggingface_hub.constants as c

        monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        # huggingface_hub reads HF_HUB_OFFLINE once at import (gradio may have imported it already)
        monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
        yield hub
