"""The Start-here tab's content (ui/tutorial.toml, issue #25 item 3): every section of the tutorial in its order, in
both languages; the code as the tutorial prints it; a runnable version whose added and changed lines are marked;
and every runnable version runs, as `python program.py` offline and in the fenced sandbox the Tensors tab uses."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, ROOT

TUTORIAL = ROOT.parent / "shared" / "seed-tutorial.md"   # the tutorial, beside the repository where it is
# The tutorial's headings, in its order (its table of contents lists a closing part that its text lacks: "end").
ORDER = ["1", "install", "concepts", "2.1", "2.2", "2.3", "2.4", "2.5", "3", "3.1", "3.2", "3.3", "3.4", "3.5",
         "4.1.1", "4.1.2", "4.1.3", "4.2.1", "4.2.2", "4.3", "4.4", "4.5", "4.6.1", "4.6.2", "end"]
MARK = re.compile(r"#\s*(added 补充|changed 修改)")


def _runnable():
    from ui.tutorial import sections

    return {s.id: s.runnable for s in sections() if s.runnable}


def test_every_section_in_the_tutorials_order_in_both_languages():
    from ui.tutorial import GO_KEYS, TAB_KEYS, chapters, sections

    assert [s.id for s in sections()] == ORDER
    assert [ch.id for ch in chapters()] == ["1", "2", "3", "4", "end"]
    for s in sections():
        for field in ("title", "text") + (("note",) if s.note else ()):
            value = getattr(s, field)
            assert set(value) == {"en", "zh"} and all(v.strip() for v in value.values()), (s.id, field)
            assert re.search(r"[\u4e00-\u9fff]", value["zh"]), (s.id, field, "zh has no Chinese")
        assert not s.tab or (s.tab in TAB_KEYS and s.tab in GO_KEYS), s.id
        assert s.printed or s.runnable or s.tab or s.id in ("1", "end"), f"{s.id}: neither code nor a tab"
    # the mistakes the issue names are corrected, kindly
    notes = {s.id: s.note.get("en", "") for s in sections()}
    assert "b.T" in notes["2.1"] and "3.10" in notes["install"] and "champion" in notes["3.3"]
    assert "亚军" in sections()[ORDER.index("3.3")].note["zh"]


def test_the_tab_ids_are_the_apps_tabs():
    import app
    from ui.tutorial import TAB_KEYS

    ids = {title.lower().replace(" ", "-") for title, _ in app.TABS}
    assert set(TAB_KEYS) == ids and app.TABS[0][0] == "Start here"
    translations = app.launch_kwargs()["i18n"].translations_dict     # the page's strings travel with every launch
    assert translations["zh"]["tab.start_here"] == "从这里开始"


def test_the_code_is_printed_as_the_tutorial_prints_it():
    from ui.tutorial import sections

    if not TUTORIAL.is_file():
        pytest.skip(f"the tutorial is not at {TUTORIAL}")
    text = TUTORIAL.read_text(encoding="utf-8")
    blocks = [[line for line in b.splitlines() if line.strip()]
              for b in re.findall(r"```(?:python|bash)\n(.*?)```", text, flags=re.S)]
    runs = [sum(blocks[i:j], []) for i in range(len(blocks)) for j in range(i + 1, len(blocks) + 1)]
    for s in sections():   # one block, or the section's consecutive blocks one after the other
        if s.printed:
            assert [line for line in s.printed.splitlines() if line.strip()] in runs, s.id


def test_the_runnable_versions_mark_what_they_add_and_change():
    """Each line of a runnable version is the tutorial's own, or marked '# added 补充' / '# changed 修改' (a marked
    block header covers its indented body); each changed line stands for one printed line."""
    from ui.tutorial import sections

    for s in sections():
        if not (s.printed and s.runnable and s.printed_language == "python"):
            continue
        printed = [line for line in s.printed.splitlines() if line.strip()]
        unmarked, changed, block = [], 0, None
        for line in s.runnable.splitlines():
            indent = len(line) - len(line.lstrip())
            if not line.strip() or (block is not None and indent > block):
                continue
            block = None
            m = MARK.search(line)
            if m:
                changed += m.group(1).startswith("changed")
                if line[:m.start()].rstrip().endswith(":"):
                    block = indent
            else:
                unmarked.append(line)
        assert [line for line in unmarked if line not in printed] == [], s.id
        assert len(printed) - len([p for p in printed if p in unmarked]) == changed, s.id


def _program_folder(code: str, folder: Path) -> Path:
    """A folder with the program and the sample pictures it reads (as Open in the playground puts them)."""
    from ui.open_in_playground import _sample, picture_names

    folder.mkdir(parents=True, exist_ok=True)
    for name in picture_names(code):
        shutil.copyfile(_sample(name), folder / name)
    (folder / "program.py").write_text(code, encoding="utf-8")
    return folder


def _python(code: str, folder: Path) -> subprocess.CompletedProcess:
    _program_folder(code, folder)
    return subprocess.run([sys.executable, "program.py"], cwd=folder, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(folder), "MPLBACKEND": "Agg",
                               "MPLCONFIGDIR": str(folder / ".mpl"), "HF_HUB_OFFLINE": "1",
                               "TORCH_HOME": str(folder / ".torch")})


@pytest.mark.slow
def test_every_runnable_version_runs_as_a_plain_python_program(tmp_path):
    programs = _runnable()
    with ThreadPoolExecutor(2) as ex:
        done = {name: ex.submit(_python, code, tmp_path / name.replace(".", "_")) for name, code in programs.items()}
        results = {name: f.result() for name, f in done.items()}
    failed = {name: r.stderr[-1500:] for name, r in results.items() if r.returncode != 0}
    assert failed == {}
    assert results["2.1"].stdout.count("tensor(") == 4      # a, b, d and c[f]
    assert "61,100,840 parameters" in results["3.1"].stdout
    assert "138,357,544 parameters" in results["3.2"].stdout
    assert "(28, 28) -> torch.Size([1, 224, 224])" in results["4.1.1"].stdout


@pytest.mark.slow
def test_every_runnable_version_runs_in_the_sandbox(fenced_slot, tmp_path):
    """Through the fenced sandbox, as the Start-here tab's Run button has the Tensors tab run it."""
    from playground.whole import shape

    for name, code in _runnable().items():
        folder = _program_folder(code, tmp_path / name.replace(".", "_"))
        (folder / "program.py").unlink()
        r = shape("tensors", fenced_slot.request("tensors", code=code, scratch=folder), code, 0.01, 0)
        assert not r.get("stopped") and r["error"] is None, (name, r["text"][-1500:])
        if name in ("4.2.1", "4.6.1", "4.6.2"):
            assert len(r["figures"]) == 1, name


# ---- in the browser: both languages, 1280 and 414 px ---------------------------------------------------------

VIEWS = [("en-US", 1280), ("en-US", 414), ("zh-CN", 1280), ("zh-CN", 414)]


@pytest.fixture(params=VIEWS, ids=lambda v: f"{v[0]}-{v[1]}px")
def lpage(request, browser, app_url):
    """A page in a browser language at a width; screenshots go to test-artifacts/start_here_*.png."""
    locale, width = request.param
    ctx = browser.new_context(locale=locale, viewport={"width": width, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(app_url, wait_until="domcontentloaded")
    pg.wait_for_selector(".gradio-container", state="visible")
    pg.shot = lambda name: pg.screenshot(path=str(ARTIFACTS / f"start_here_{name}_{locale}_{width}px.png"))
    ARTIFACTS.mkdir(exist_ok=True)
    yield pg, locale, width
    ctx.close()


def _tab(pg, tab_id: str):
    return pg.locator(f'#main-tabs [role=tablist] [role=tab][data-tab-id="{tab_id}"]').first


@pytest.mark.slow
def test_the_start_here_tab_shows_every_section_and_runs_one_in_the_tensors_tab(lpage):
    from ui.tutorial import sections

    pg, locale, width = lpage
    zh = locale.startswith("zh")
    start = _tab(pg, "start-here")
    start.wait_for(state="visible")
    assert start.inner_text().strip() == ("从这里开始" if zh else "Start here")
    assert _tab(pg, "tensors").inner_text().strip() == ("张量" if zh else "Tensors")
    start.click()
    pg.locator("#start-intro").wait_for(state="visible")
    pg.wait_for_timeout(500)
    pg.shot("top")
    assert pg.locator(".tutorial-section").count() == len(sections())
    for s in sections():                                        # every section shows, in the browser's language
        text = pg.locator(f"#{s.anchor}").inner_text()
        assert s.title["zh" if zh else "en"] in text, s.id
    assert pg.evaluate("document.documentElement.scrollWidth") <= width     # nothing wider than the screen
    cut = pg.evaluate("""[...document.querySelectorAll('#start-here button, #start-here .label-wrap span')]
        .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)""")
    assert cut == []
    section = pg.locator("#tutorial-2-2-1")
    section.scroll_into_view_if_needed()
    pg.wait_for_timeout(300)
    section.screenshot(path=str(ARTIFACTS / f"start_here_section_2_1_{locale}_{width}px.png"))

    pg.locator("#tutorial-2-2-1-run").click()                  # the runnable 2.1 lands in Tensors and runs
    ran = "运行用时" if zh else "Ran in"                        # the server's status, in the page's language
    pg.wait_for_function(f"document.querySelector('#tensor-status')?.innerText.includes('{ran}')", timeout=120_000)
    assert _tab(pg, "tensors").get_attribute("aria-selected") == "true"
    assert "torch.mm(a, b.T)" in pg.locator("#tensor-code").inner_text()
    assert pg.locator("#tensor-result textarea").input_value().count("tensor(") == 4
    pg.wait_for_timeout(300)
    pg.shot("ran_2_1")

    start.click()                                               # a section's tab button opens its tab
    pg.locator("#tutorial-3-3-1-go").click()
    pg.wait_for_function("document.querySelector('#main-tabs [data-tab-id=\"classify\"]')"
                         "?.getAttribute('aria-selected') === 'true'")
