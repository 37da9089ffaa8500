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
    # a name the language lacks: Python's message as Python writes it, then the names there are, in Chinese
    zh, en = (programs.run_tensors("y = x + 1", language=lang)["text"] for lang in ("zh", "en"))
    assert "第 1 行出错：y = x + 1\nNameError: name 'x' is not defined\n这里可以直接使用：torch、nn、F、optim" in zh, zh
    assert "abs、" in zh and "Available here" not in zh
    assert "NameError: name 'x' is not defined\nAvailable here: torch, nn, F, optim, device, abs, " in en, en


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


def test_the_values_facts_in_both_languages():
    """The values text's lines ("[line N] name: shape ... stride ... contiguous") in the request's language;
    names, dtypes, PyTorch's attributes and the printed values as they are."""
    from playground import programs

    code = "a = torch.ones(2, 3)\nb = a.t()\n3"
    en = programs.run_tensors(code)["text"]
    assert "[line 1] a: shape (2, 3) | float32 | cpu | requires_grad=False | stride (3, 1) contiguous\n" in en
    assert "[line 2] b: shape (3, 2) | float32 | cpu | requires_grad=False | stride (1, 3) NOT contiguous" in en
    assert "[line 3] 3: int\n3" in en and not CJK.search(en)
    zh = programs.run_tensors(code, language="zh")["text"]
    assert "[第 1 行] a：形状 (2, 3) | float32 | cpu | requires_grad=False | 步长 (3, 1)，连续\n" in zh
    assert "[第 2 行] b：形状 (3, 2) | float32 | cpu | requires_grad=False | 步长 (1, 3)，不连续" in zh
    assert "tensor([[1., 1., 1.],\n        [1., 1., 1.]])" in zh and "line" not in zh and "shape" not in zh


def test_a_whole_programs_facts_are_written_by_the_server():
    """A whole program's process sends the facts ([line, name, summary, value text]); the server writes their words,
    and skips what is not such an entry (what the process sends is untrusted)."""
    import torch

    from playground.tensor_view import summarize, values_text

    s = summarize(torch.ones(6))
    facts = [[2, "g", s, "tensor([1., 1., 1., 1., 1., 1.])"], "junk", [1, 2], [3, "n", {"type": "int"}, "3"]]
    assert values_text(facts) == ("[line 2] g: shape (6,) | float32 | cpu | requires_grad=False | stride (1,) "
                                  "contiguous\ntensor([1., 1., 1., 1., 1., 1.])\n\n[line 3] n: int\n3")
    zh = values_text(facts, "zh")
    assert zh.startswith("[第 2 行] g：形状 (6,) | float32") and "[第 3 行] n：int\n3" in zh
    assert values_text(None, "zh") == "" and values_text({"x": 1}) == ""


def test_a_whole_programs_lines_in_chinese(fenced_slot, tmp_path):
    """In the fenced process: the values' lines and our own words (a sys.exit code) in the request's language, the
    program's values as PyTorch prints them."""
    from playground.whole import shape

    code = "import sys\na = torch.ones(2, 3)\na.T\nprint('done')\nsys.exit(3)"
    zh = shape("tensors", fenced_slot.request("tensors", code=code, scratch=tmp_path, language="zh"), code, 0.01, 0,
               "zh")
    assert "[第 2 行] a：形状 (2, 3) | float32 | cpu | requires_grad=False | 步长 (3, 1)，连续\ntensor([[1., 1., 1.]," \
        in zh["values"]
    assert "[第 3 行] a.T：形状 (3, 2) | float32 | cpu | requires_grad=False | 步长 (1, 3)，不连续" in zh["values"]
    assert zh["printed"] == "done\n退出码 3\n"
    en = shape("tensors", fenced_slot.request("tensors", code=code, scratch=tmp_path), code, 0.01, 0)
    assert "[line 3] a.T: shape (3, 2) | float32 | cpu | requires_grad=False | stride (1, 3) NOT contiguous" \
        in en["values"] and en["printed"] == "done\nexit code 3\n"


def test_the_restricted_languages_warnings_in_chinese():
    from playground.words import warning_lines

    warned = [(3, "UserWarning: To copy construct from a tensor, use sourceTensor.clone().detach()")]
    assert warning_lines(warned) == ["line 3: UserWarning: To copy construct from a tensor, use "
                                     "sourceTensor.clone().detach()"]
    assert warning_lines(warned, "zh") == ["第 3 行：UserWarning: To copy construct from a tensor, use "
                                           "sourceTensor.clone().detach()"]


def test_the_words_a_programs_process_writes_come_from_the_server(monkeypatch):
    """The program's process reads no catalogue: the server sends the words it writes in the visitor's language
    (the histogram's axis, where its output is cut, a sys.exit code, ...), with the placeholders it fills in."""
    from core import fonts
    from playground import program_run
    from playground.words import child_words

    assert set(child_words("en")) == set(program_run.WORDS)
    en = program_run._words({"words": child_words("en")})
    assert en["output_cut"] == "[output cut at 400,000 characters]" and en["exit_code"] == "exit code {code}"
    assert program_run._words({}) == program_run.WORDS     # no words sent (a test's spec): English
    zh = program_run._words({"words": child_words("zh")})
    assert all(CJK.search(v) for v in zh.values()), zh
    assert "{code}" in zh["exit_code"] and "{asked}" in zh["train_steps"] and "{error}" in zh["no_results"]
    assert program_run._words({"words": {"value": 3, "exit_code": "x {code}"}})["value"] == "value"   # untrusted
    if fonts.available():
        assert zh["value"] == "数值"
    child_words.cache_clear()
    monkeypatch.setenv("PLAYGROUND_CJK_FONT", "")     # no CJK font: the picture's words in English, not boxes
    fonts.cjk_font_file.cache_clear()
    try:
        assert child_words("zh")["value"] == "value"
    finally:
        monkeypatch.delenv("PLAYGROUND_CJK_FONT")
        fonts.cjk_font_file.cache_clear()
        child_words.cache_clear()


def test_the_histograms_axis_word_in_chinese():
    import numpy as np
    import torch

    from core import fonts
    from playground.tensor_view import picture_words, render

    if not fonts.available():
        pytest.skip("no CJK font installed: the pictures are written in English")
    v = torch.linspace(-1, 1, 1000)
    en, zh = render("v", v), render("v", v, picture_words("zh"))
    assert np.array_equal(en, render("v", v, picture_words("en")))    # English: the same picture as before
    below = (slice(230, 260), slice(120, 240))                         # under the axis, in the middle: the word
    assert not np.array_equal(en[below], zh[below]) and np.array_equal(en[:200], zh[:200])


def test_the_graphs_nodes_say_mean_in_the_requests_language():
    """A large tensor's node in the autograd graph: "(5, 3) mean 0.1" in English, 均值 in Chinese; the leaf and
    step tables' cells too (values, where a tensor is small enough, are the same in both)."""
    import torch

    from playground import graph
    from playground.words import child_words

    w = torch.ones(5, 3, requires_grad=True)
    labels = lambda g: "\n".join(label for _, label in g.nodes.values())   # noqa: E731
    assert "data (5, 3) mean 1" in labels(graph.build((w * 2).sum(), {id(w): "w"}))
    zh = labels(graph.build((w * 2).sum(), {id(w): "w"}, mean=child_words("zh")["mean"]))
    assert "data (5, 3) 均值 1" in zh and "mean" not in zh
    assert graph.values(torch.ones(5, 4)) == "(5, 4) mean 1"
    assert graph.values(torch.ones(5, 4), mean=child_words("zh")["mean"]) == "(5, 4) 均值 1"
    assert graph.values(torch.ones(2, 3), mean="均值") == "[1, 1, 1, 1, 1, 1]"


def test_the_graphs_chinese_is_drawn_in_the_cjk_font():
    """The nodes' text is monospace; the CJK font follows it, or 均值 is drawn as boxes (matplotlib warns of a
    missing glyph)."""
    import warnings

    import torch

    from core import fonts
    from playground import graph

    if not fonts.available():
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei; CI installs packages.txt)")
    w = torch.ones(5, 3, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # "Glyph 22343 missing from font(s) DejaVu Sans Mono"
        graph.render(graph.build((w * 2).sum(), {id(w): "w"}, mean="均值"), "计算图")


def _code_tokens(code: str) -> list:
    import io
    import tokenize

    ends = (tokenize.NEWLINE, tokenize.NL)   # a line's end moves with its comment
    return [(tok.type, tok.string, None if tok.type in ends else tok.start)
            for tok in tokenize.generate_tokens(io.StringIO(code).readline) if tok.type != tokenize.COMMENT]


MATH = {"dy/dx = 2x = 4", "dz/dx = cos(x^2) * 2x", "grad = softmax(logits) - one_hot(target)",
        "(2x3) @ (3x2) -> (2x2)", "(3,1) + (4,) -> (3,4)"}   # comments without words: the same in both languages


def test_our_presets_have_chinese_comments_and_the_same_code():
    """A zh visitor's preset: every comment Chinese (the tutorial's are already; ours from the catalogue), the code
    token for token the same, and English as it always was (the API's defaults)."""
    from core.i18n import catalogue
    from playground import codegen
    from playground.presets import ALL, COMMENT_KEYS, _comments, preset

    for name, code in ALL.items():
        assert preset(name) == preset(name, "en") == code
        zh = preset(name, "zh")
        assert _code_tokens(zh) == _code_tokens(code), name
        assert codegen.marker_line(zh) == codegen.marker_line(code), name     # the `# step` line still marks
        left = [text.strip() for _, _, text in _comments(zh) if not CJK.search(text) and text.strip() not in MATH]
        assert left == [], (name, left)
    assert preset("no such preset", "zh") == ""
    every = "\n".join(ALL.values())
    assert [k for k in COMMENT_KEYS if catalogue("en")[k] not in every] == []   # each entry still matches


def test_the_editor_and_a_preset_in_the_visitors_language():
    """The page load writes the editor's first program in the visitor's language (nothing for English: the page's
    own value); picking a preset gives its comments in the request's language."""
    import gradio as gr

    from playground.presets import DEFAULT_AUTOGRAD, DEFAULT_TENSOR, preset
    from ui import autograd, tensors

    for name in (DEFAULT_TENSOR, DEFAULT_AUTOGRAD):
        first = tensors.initial_code(name)
        assert isinstance(first("en"), type(gr.skip())) and first("zh") == preset(name, "zh") != preset(name)
    assert tensors.load_preset(DEFAULT_TENSOR) == preset(DEFAULT_TENSOR)       # no request: English
    assert autograd.load_preset(DEFAULT_AUTOGRAD) == (preset(DEFAULT_AUTOGRAD), 0)
    assert tensors.load_preset("no such preset") == ""


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


def test_a_large_leafs_cells_in_chinese(client, zh_client):
    """A leaf too large to list: its cells say 均值 (mean) in Chinese, in the whole program's table (the server's
    default sandbox) as in the graph."""
    code = "w = torch.ones(5, 4, requires_grad=True)\nloss = (w * 2).sum()\nloss.backward()"
    en = client.predict(code, 0.01, api_name="/autograd_run")
    zh = zh_client.predict(code, 0.01, api_name="/autograd_run")
    assert en[2]["data"] == [["w", "(5, 4)", "(5, 4) mean 1", "(5, 4) mean 2"]], en[2]["data"]
    assert zh[2]["data"] == [["w", "(5, 4)", "(5, 4) 均值 1", "(5, 4) 均值 2"]], zh[2]["data"]
    from playground import programs                                          # the restricted language's table

    assert programs.run_autograd(code, language="zh")["leaves"] == zh[2]["data"]


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
            editor = pg.locator(f"#{'tensor' if tab == 'tensors' else 'autograd'}-code .cm-content").inner_text()
            assert bool(CJK.search(editor)) == zh, editor          # the preset's comments in the page's language
            assert ("# step：" in editor if zh else "# step: the lines below" in editor) or tab == "tensors"
            if tab == "tensors":
                shown = pg.locator(ran).input_value()
                assert ("[第 1 行] a：形状 (2, 3)" if zh else "[line 1] a: shape (2, 3)") in shown, shown[:200]
            limits = pg.locator(".sandbox-limits").locator("visible=true").first.inner_text()
            assert bool(CJK.search(limits)) == zh, limits
            assert pg.evaluate("document.documentElement.scrollWidth") <= width    # nothing wider than the screen
            cut = pg.evaluate("""[...document.querySelectorAll('button, label span, .label-wrap span')]
                .filter(e => e.offsetParent !== null && e.innerText.trim() && e.scrollWidth > e.clientWidth + 1)
                .map(e => e.innerText)""")
            assert cut == [], cut
    finally:
        ctx.close()
