"""Shared fixtures: one in-process app server for client and browser tests, a Chromium page, artifacts; and each
test's layer (unit / app / browser marker), derived from the fixtures it uses.

The packages are imported as installed (`pip install -e . --no-deps`), not through sys.path."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from core.settings import reload as reload_settings

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the real Hub; the fake one is opt-in
ARTIFACTS = ROOT / "test-artifacts"
# The Chromium the browser tests drive. Missing or unable to start: those tests are skipped, unless
# PLAYGROUND_REQUIRE_BROWSER=1 (CI sets it in .ci/run), where that is an error.
CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("PLAYGROUND_REQUIRE_BROWSER", "") not in ("", "0")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]

# ------------------------------------------------------------------ layers: pytest -m unit / app / browser
LAYERS = ("unit", "app", "browser")
BROWSER_FIXTURES = {"browser"}            # page, wpage, ... all go through it
APP_FIXTURES = {"app_server"}             # app_url, app_demo, client all go through it


def _layer(item) -> str:
    """browser if the test (or a fixture it uses) needs Chromium; app if it needs the launched app server or is
    marked pytest.mark.app (a test that builds or starts the app itself); else unit. A layer marker that
    contradicts the fixtures is an error, so a test cannot drift into the wrong layer."""
    names = set(getattr(item, "fixturenames", ()))
    derived = "browser" if names & BROWSER_FIXTURES else "app" if names & APP_FIXTURES else "unit"
    explicit = {m.name for m in item.iter_markers() if m.name in LAYERS}
    if not explicit:
        return derived
    if len(explicit) > 1:
        raise pytest.UsageError(f"{item.nodeid}: more than one layer marker {sorted(explicit)}")
    (mark,) = explicit
    if mark == derived or (mark == "app" and derived == "unit"):   # an explicit mark may only lift unit to app
        return mark
    raise pytest.UsageError(f"{item.nodeid} is marked {mark} but its fixtures make it {derived}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        layer = _layer(item)
        if not item.get_closest_marker(layer):
            item.add_marker(layer)


def _patient_url_ok(url: str) -> bool:
    """Gradio's launch check (networking.url_ok) gives up after one 3 s timeout and then refuses to start
    ("localhost is not accessible"): on a loaded 2-core CI machine the new server can take longer to answer its
    first HEAD. Same check, up to 60 s."""
    import time as _time

    import httpx

    deadline = _time.monotonic() + 60
    while _time.monotonic() < deadline:
        try:
            if httpx.head(url, timeout=10, verify=False).status_code in (200, 401, 301, 302, 303, 307, 308):
                return True
        except (httpx.TransportError, OSError):
            pass
        _time.sleep(0.5)
    return False


def _patch_gradio_launch_check() -> None:
    import gradio.networking

    gradio.networking.url_ok = _patient_url_ok


_patch_gradio_launch_check()
_launches = [0]


def _count_launches() -> None:
    """Count Blocks.launch calls from the moment gradio is imported (the wrapper only counts)."""
    import functools
    import sys

    blocks = sys.modules.get("gradio.blocks")
    if blocks is None or getattr(blocks.Blocks.launch, "counted_by_conftest", False):
        return
    launch = blocks.Blocks.launch

    @functools.wraps(launch)
    def counted(self, *args, **kwargs):
        _launches[0] += 1
        return launch(self, *args, **kwargs)

    counted.counted_by_conftest = True
    blocks.Blocks.launch = counted


def _no_app_in_unit(item):
    """A unit test (or a fixture it set up) that launches a Gradio app fails: mark it pytest.mark.app."""
    _count_launches()
    before = _launches[0]
    result = yield
    _count_launches()
    if item.get_closest_marker("unit") and _launches[0] != before:
        raise pytest.fail.Exception(f"{item.nodeid} is a unit test but launched a Gradio app: use the app_server "
                                    f"fixture or mark it pytest.mark.app")
    return result


pytest_runtest_setup = pytest.hookimpl(wrapper=True)(_no_app_in_unit)
pytest_runtest_call = pytest.hookimpl(wrapper=True)(_no_app_in_unit)


@pytest.fixture
def monkeypatch(monkeypatch):
    """pytest's monkeypatch, with the app's settings (core/settings.py: read once, then kept) read again whenever
    it sets or deletes a PLAYGROUND_* variable, and again after the test has put them back."""
    setenv, delenv = monkeypatch.setenv, monkeypatch.delenv

    def set_(name, value, prepend=None):
        setenv(name, value, prepend)
        if name.startswith("PLAYGROUND_"):
            reload_settings()

    def del_(name, raising=True):
        delenv(name, raising)
        if name.startswith("PLAYGROUND_"):
            reload_settings()

    monkeypatch.setenv, monkeypatch.delenv = set_, del_
    yield monkeypatch
    monkeypatch.undo()          # now, not after this teardown (pytest's own undo then finds nothing left)
    reload_settings()


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


def _no_browser(reason: str):
    """Skip the browser tests here; fail them where a browser is required (CI)."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (PLAYGROUND_REQUIRE_BROWSER is set, so this is an error)", pytrace=False)
    pytest.skip(f"{reason}; install it (apt-get install -y chromium) or point PLAYGROUND_CHROMIUM at one")


@pytest.fixture(scope="session")
def browser():
    """The one place Chromium is launched (headless, through Playwright), for the whole session."""
    if not Path(CHROMIUM).is_file():
        _no_browser(f"Chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        _no_browser(f"Playwright is not installed ({e})")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except PlaywrightError as e:
            _no_browser(f"Chromium at {CHROMIUM} could not be launched: {str(e).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url, request):
    """A fresh page on the app; a screenshot is saved to test-artifacts/ after each browser test."""
    ctx = browser.new_context(viewport={"width": 1300, "height": 1100})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(app_url, wait_until="domcontentloaded")
    pg.wait_for_selector(".gradio-container", state="visible")
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    ctx.close()


def open_tab(page, title: str) -> None:
    """Click a top-level tab by its title."""
    page.get_by_role("tab", name=title, exact=True).first.click()


def draw(page, canvas_id: str, points, steps: int = 6) -> None:
    """One mouse stroke on a sketchpad through `points` ((x, y) in 0..1 of the middle of the canvas)."""
    canvas = page.locator(f"#{canvas_id} canvas").last
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    xs = [box["x"] + box["width"] * (0.35 + 0.3 * px) for px, _ in points]
    ys = [box["y"] + box["height"] * (0.15 + 0.7 * py) for _, py in points]
    page.mouse.move(xs[0], ys[0])
    page.mouse.down()
    for x, y in zip(xs[1:], ys[1:]):
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


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


# ------------------------------------------------------------------ whole programs: the fenced template
@pytest.fixture(scope="session")
def fork_server(tmp_path_factory):
    """One warm template process (playground/zygote.py) for the whole-program tests."""
    from playground import fence
    from playground.fork_server import ForkServer

    if not fence.probe()["fence"]:
        pytest.skip("this kernel offers no Landlock + seccomp fence")
    server = ForkServer(tmp_path_factory.mktemp("sandbox-work"))
    server.start()
    yield server
    server.close()


@pytest.fixture
def fenced_slot(fork_server):
    from playground.whole import ForkSlot, ProgramLimits

    return ForkSlot(fork_server, ProgramLimits(wall_s=120, cpu_s=120), name="test")
