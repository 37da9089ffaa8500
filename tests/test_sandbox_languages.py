"""The Tensors and Autograd tabs in English and Chinese (issue #25): what the server writes (status, notes, the
tables' headers, refusals, the limits line, why a program stopped) follows the request's language, while what the
program printed and PyTorch's messages stay exactly as Python wrote them; the API's shapes are the same in both
languages; the page's own text follows the browser's (screenshots at 1280 and 414 px)."""
from __future__ import annotations

import re

import pytest

from tests.conftest import ARTIFACTS

CJK = re.compile(r"[\u4e00-\u9fff]")
PROGRAM = "print('hello', torch.ones(2))\na = torch.ones(2, 3)\nd = torch.mm(a, a)"


@pytest.fixture(scope="module")
def zh_client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False, headers={"Accept-Language": "zh-CN,zh;q=0.9"})


# ---- the sandbox's words, without a server --------------------------------------------------------------------

def test_the_limits_line_and_the_fence_in_both_languages():
    from playground.limits import WorkerLimits
    from ui.tensors import limits_html

    limits = WorkerLimits(wall_s=10, cpu_s=10, memory_mb=1536, platform="win32")
    assert limits.describe(2).startswith("Limits here: 10 s wall clock, 10 s CPU (watchdog)")
    zh = limits.describe(2, "zh")
    assert zh.startswith("本机的限制：墙钟时间 10 秒") and "1.5 GiB" in zh and "2 个程序" in zh
    assert "Limits here" in limits_html() and CJK.search(limits_html("zh")) and "Limits here" not in limits_html("zh")


def test_the_restricted_languages_refusals_in_chinese_with_pytorchs_message_as_is():
    from playground import programs

    r = programs.run_tensors("import torch\nf = lambda: 1\n_x = 2", language="zh")
    assert "沙箱拒绝运行：3 个问题，从上到下：" in r["text"] and "第 2 行：不允许使用 lambda" in r["text"]
    assert "Refused by the sandbox: 3 problems" in programs.run_tensors("import torch\nf = lambda: 1\n_x = 2")["text"]
    r = programs.run_tensors("a = torch.ones(2, 3)\nd = torch.mm(a, a)", language="zh")
    assert "第 2 行出错：d = torch.mm(a, a)\nRuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)" \
        in r["text"]
    r = programs.run_autograd("x = torch.tensor(2.0, requires_grad=True)\ny = x * x", language="zh")
    assert "练习场替它调用了 y.backward()" in r["text"] and "叶子节点的梯度" in r["text"]


def test_a_stopped_whole_program_says_why_in_the_requests_language():
    from core.errors import term
    from playground.whole import shape

    raw = {"stopped": term("sandbox.why.wall", wall_s=30.0), "printed": "tick 0\n"}
    assert shape("tensors", raw, "", 0.01, 0)["text"] == \
        "tick 0\nStopped: it ran for 30 s of wall-clock time (the limit)"
    assert shape("tensors", raw, "", 0.01, 0, "zh")["text"] == "tick 0\n已停止：它运行了 30 秒的墙钟时间（上限）"
    raw = {"printed": "", "notes": [term("sandbox.note.num_workers", asked=2)], "captions": ["Figure 1"]}
    assert "按 num_workers=0 运行" in shape("tensors", raw, "", 0.01, 0, "zh")["notes"][0]


def test_bold_chinese_labels_close_before_their_punctuation():
    """CommonMark closes ** after punctuation only before a space or punctuation: "**已取消：**程序" shows its stars,
    "**已取消**：程序" is bold."""
    import json
    from pathlib import Path

    zh = json.loads((Path(__file__).resolve().parents[1] / "core" / "locales" / "zh.json").read_text("utf-8"))
    mine = ("sandbox.", "tensors.", "autograd.", "presets.", "open.", "common.", "codegen.")
    broken = [k for k, v in zh.items() if k.startswith(mine) and re.search(r"\*\*[^*]*[：，。）；]\*\*[^\s*]", v)]
    assert broken == []


def test_the_restricted_languages_note_is_bold_in_the_limits_html(monkeypatch):
    from ui import tensors

    monkeypatch.setattr(tensors, "sandbox_mode", lambda: "restricted")
    html = tensors.limits_html("zh")
    assert "<strong>受限语言</strong>" in html and "**" not in html


# ---- through the API: the same shapes, our words in the request's language -------------------------------------

def test_tensor_eval_in_chinese_keeps_the_programs_output_and_the_apis_shape(client, zh_client):
    en = client.predict(PROGRAM, api_name="/tensor_eval")
    zh = zh_client.predict(PROGRAM, api_name="/tensor_eval")
    assert len(en) == len(zh) == 7
    assert zh[0] == en[0] and "hello tensor([1., 1.])" in zh[0]            # what the program printed, unchanged
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied" in zh[0]
    assert en[1]["headers"][:2] == ["line", "name / expression"] and zh[1]["headers"][:2] == ["行", "名字 / 表达式"]
    assert en[1]["data"] == zh[1]["data"]
    assert "Ran in" in en[5] and zh[5].startswith("运行用时") and "操作系统隔离" in zh[5]


def test_autograd_run_in_chinese(client, zh_client):
    code = "x = torch.tensor(2.0, requires_grad=True)\ny = x * x\ny.backward()\nprint('grad', x.grad)"
    en = client.predict(code, 0.01, api_name="/autograd_run")
    zh = zh_client.predict(code, 0.01, api_name="/autograd_run")
    assert len(en) == len(zh) == 7
    assert en[0].startswith("Device: ") and zh[0].startswith("设备：") and "叶子节点的梯度" in zh[0]
    assert "grad tensor(4.)" in zh[0]                                        # its print output, as printed
    assert zh[2]["headers"] == ["叶子节点", "形状", "data（数据）", "grad（梯度）"] and zh[2]["data"] == en[2]["data"]
    assert set(zh[4]) == set(en[4]) and zh[4]["data"] == en[4]["data"]     # the loss curve: its value, as before
    assert CJK.search(zh[6]) and not CJK.search(en[6])


def test_a_refusal_before_the_run_in_chinese(zh_client):
    out = zh_client.predict("x = 1", 0.01, 10, api_name="/autograd_train")   # Train, and no `# step` line
    assert out[0].startswith("已停止：要训练的话") and out[6].startswith("**已停止：")


# ---- in the browser ---------------------------------------------------------------------------------------------

VIEWS = [("zh-CN", 1280), ("zh-CN", 414), ("en-US", 414)]


@pytest.mark.slow
@pytest.mark.parametrize("locale, width", VIEWS, ids=[f"{v[0]}-{v[1]}px" for v in VIEWS])
def test_the_sandbox_tabs_in_the_browsers_language(browser, app_url, locale, width):
    """Tensors and Autograd in the browser's language at a desktop's and a phone's width: the page's text (gr.I18n)
    and the server's (the first screen's status, the table's headers, the limits line), nothing cut or wider than
    the screen; screenshots in test-artifacts/sandbox_<tab>_<locale>_<width>px.png."""
    zh = locale.startswith("zh")
    ctx = browser.new_context(locale=locale, viewport={"width": width, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        pg.goto(app_url, wait_until="domcontentloaded")
        pg.wait_for_selector(".gradio-container", state="visible")
        for tab, status, table, ran in (("tensors", "#tensor-status", "#tensor-table", "#tensor-values textarea"),
                                        ("autograd", "#autograd-status", "#autograd-leaves",
                                         "#autograd-result textarea")):
            pg.locator(f'#main-tabs [role=tablist] [role=tab][data-tab-id="{tab}"]').first.click()
            pg.wait_for_function(f"document.querySelector('{ran}')?.value.length > 0", timeout=120_000)
            pg.wait_for_timeout(500)
            pg.screenshot(path=str(ARTIFACTS / f"sandbox_{tab}_{locale}_{width}px.png"), full_page=True)
            text = pg.locator(f"#{'tensor' if tab == 'tensors' else 'autograd'}-run").inner_text()
            assert bool(CJK.search(text)) == zh, text
            assert bool(CJK.search(pg.locator(status).inner_text())) == zh
            assert bool(CJK.search(pg.locator(table).inner_text())) == zh
            limits = pg.locator(".sandbox-limits").locator("visible=true").first.inner_text()
            assert bool(CJK.search(limits)) == zh, limits
            assert pg.evaluate("document.documentElement.scrollWidth") <= width    # nothing wider than the screen
            cut = pg.evaluate("""[...document.querySelectorAll('button, label span, .label-wrap span')]
                .filter(e => e.offsetParent !== null && e.innerText.trim() && e.scrollWidth > e.clientWidth + 1)
                .map(e => e.innerText)""")
            assert cut == [], cut
    finally:
        ctx.close()
