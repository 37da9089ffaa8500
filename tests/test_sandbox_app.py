"""Tensors and Autograd tabs through the API (gradio_client) and in Chromium: presets, errors, payloads,
a runaway program stopped by the wall-clock limit, and the server still answering after each."""
from __future__ import annotations

import os
import time

import pytest

from tests.conftest import ARTIFACTS, open_tab

PAYLOADS = [   # each fails on its own line or is fenced; none leaves a file outside the visitor's folder
    "torch.load('/etc/passwd')",
    "torch.ones(3).numpy().tofile('/tmp/pwned')",
    "import subprocess\nsubprocess.run(['touch', '/tmp/pwned'])",
    "torch.ones(10 ** 6, 10 ** 6)",
    "(" * 300 + ")" * 300,
]


def test_tensor_eval_tutorial_preset(client):
    from playground.presets import TUTORIAL_2_1

    text, rows, pictures, code, values, status, files = client.predict(TUTORIAL_2_1, api_name="/tensor_eval")
    assert text == ""    # the preset prints nothing: its results are the rows and values
    assert "d: shape (2, 2)" in values and "f: shape (2, 3) | bool" in values
    assert [r[1] for r in rows["data"]] == list("abcdefgh")
    assert len(pictures) >= 4 and all(os.path.exists(p["image"]) for p in pictures)
    assert "torch.set_default_device(device)" in code and "d = torch.mm(a, b.T)" in code
    assert "fenced by the operating system" in status and "printed nothing" in status


def test_tensor_eval_shows_pytorchs_shape_error(client):
    text, rows, _, _, values, *_ = client.predict("a = torch.ones(2, 3)\nb = torch.rand(2, 3)\nd = torch.mm(a, b)",
                                                 api_name="/tensor_eval")
    assert 'File "program.py", line 3, in <module>' in text and "d = torch.mm(a, b)" in text
    assert "RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x3 and 2x3)" in text
    assert "a: shape (2, 3)" in values  # the lines before the error still show


def test_saved_files_are_listed_for_download_and_last_for_the_visit(client):
    _, _, _, _, _, _, files = client.predict("import torch\ntorch.save(torch.ones(3), 'ones.pt')",
                                             api_name="/tensor_eval")
    assert [os.path.basename(f) for f in files] == ["ones.pt"] and all(os.path.exists(f) for f in files)
    text, *_ = client.predict("print(torch.load('ones.pt').sum().item())", api_name="/tensor_eval")
    assert text == "3.0\n"


def test_tensor_eval_prints_in_order_like_python(client):
    code = "import torch\nfor i in range(3):\n    print(f'step {i}', torch.ones(i).sum().item())\nprint('done')"
    text, *_ = client.predict(code, api_name="/tensor_eval")
    assert text == "step 0 0.0\nstep 1 1.0\nstep 2 2.0\ndone\n"


@pytest.mark.parametrize("payload", PAYLOADS, ids=[p[:30] for p in PAYLOADS])
def test_payload_fails_or_is_fenced_and_server_answers(client, payload):
    text, *_ = client.predict(payload, api_name="/tensor_eval")
    assert "Error" in text or "Stopped" in text, text
    assert not os.path.exists("/tmp/pwned")
    ok, *_ = client.predict("print(torch.ones(2) * 3)", api_name="/tensor_eval")
    assert "tensor([3., 3.])" in ok


def test_runaway_program_is_stopped_and_the_next_starts_at_once(client):
    from playground.pool import get_sandbox

    sandbox = get_sandbox()  # the app server runs in this process (conftest), so this is its pool
    old, sandbox.wall_seconds = sandbox.wall_seconds, 2.0
    try:
        t0 = time.perf_counter()
        slow = "x = torch.rand(3000, 3000)\n" + "\n".join(["y = x @ x @ x @ x @ x @ x"] * 20)
        text, *_, status, _ = client.predict(slow, api_name="/tensor_eval")
        assert text.startswith("Stopped") and ("wall-clock" in text or "CPU" in text), text
        assert time.perf_counter() - t0 < 60
    finally:
        sandbox.wall_seconds = old
    text, *_ = client.predict("print(torch.arange(3) + 1)", api_name="/tensor_eval")  # the template is still warm
    assert "tensor([1, 2, 3])" in text
    assert sandbox.restarts == 0


def test_one_session_one_program_and_the_other_visitor_is_served(app_url):
    """Issue #13: one session sends 5 runaway programs at once, another a one-liner (two gradio_client sessions).
    The victim is answered at once; the attacker's extra programs are refused at once, the one that runs is
    stopped by the limit."""
    from bench.bench_sandbox import abuse_case
    from playground.pool import get_sandbox

    sandbox = get_sandbox()
    sandbox.warm()  # both workers up (an earlier test's runaway left one restarting)
    old, sandbox.wall_seconds = sandbox.wall_seconds, 4.0
    try:
        r = abuse_case(app_url)
    finally:
        sandbox.wall_seconds = old
    # served beside the runaway, not after it (bounded generously: CI's machine may be busy; bench/ times it)
    assert r["victim_answer_ok"] and r["victim_answer_s"] < 30, r
    assert r["attacker_refused"] == 4 and r["attacker_stopped"] == 1, r
    assert r["attacker_slowest_refusal_s"] < 30, r
    # refused by the pool (one program per session) or, past the queue's per-session cap, by the queue itself
    by_pool = [a["message"] for a in r["attacks"] if a["message"].startswith("Not run")]
    assert len(by_pool) >= 3 and all("your previous program is still running" in m for m in by_pool), r


def test_sandbox_tabs_say_which_limits_apply(client):
    """The limits line in both tabs names this machine's limits and fence (Linux here: Landlock and seccomp)."""
    from playground.pool import get_sandbox

    line = get_sandbox().describe()
    assert line.startswith("Limits here: 30 s wall clock, 30 s CPU, 2 GiB memory"), line
    assert "Landlock ABI" in line and "seccomp" in line, line
    config = client.config if hasattr(client, "config") else {}
    shown = [c["props"].get("value", "") for c in config.get("components", []) if c.get("type") == "html"]
    assert sum(line in str(v) for v in shown) == 2, shown  # Tensors and Autograd


@pytest.mark.parametrize("endpoint", ["/tensor_eval", "/autograd_run"])
def test_cancel_stops_a_program_that_prints_nothing(app_url, endpoint):
    """Cancel (or a closed page) stops a program at once even while it prints nothing: its visitor may run the
    next one right away (one program per visitor), and another visitor's program runs on. The event's generator
    used to be closed only at its next item, which a silent program sends at its end: the program ran on, and Run
    said "your program is still running"."""
    from gradio_client import Client

    c, other = Client(app_url, verbose=False), Client(app_url, verbose=False)
    silent = "import time\ntime.sleep(25)\nprint('woke')"
    job = c.submit(silent, api_name=endpoint)
    theirs = other.submit("import time\ntime.sleep(5)\nprint('other visitor')", api_name=endpoint)
    time.sleep(3)                                  # both running (a program starts in milliseconds)
    job.cancel()
    cancelled = time.monotonic()
    while True:   # the same visitor's next program: refused while the silent one still runs
        try:
            text, *_ = c.predict("print('next')", api_name=endpoint)
        except Exception as exc:  # noqa: BLE001 - a refusal raised (Autograd) rather than shown (Tensors)
            text = str(exc)
        if "next" in text or time.monotonic() - cancelled > 15:
            break
        time.sleep(0.5)
    assert "next" in text and "woke" not in text, f"the cancelled program still runs: {text}"
    assert "other visitor" in theirs.result(timeout=60)[0]   # another visitor's program is not stopped with it


def test_autograd_run_with_no_arguments_is_the_tutorial_net(client):
    text, graph, leaves, steps, curve, code, _ = client.predict(api_name="/autograd_run")
    assert [r[0] for r in leaves["data"]] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert all(r[3] != "None" for r in leaves["data"])  # every leaf has a .grad
    assert [r[0] for r in steps["data"]] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert os.path.exists(graph) and os.path.getsize(graph) > 5000
    assert "loss.backward()" in code and "optim.SGD(net.parameters(), lr=lr)" in code


def test_autograd_scalar_chain_rule_grad(client):
    text, *_ = client.predict("x = torch.tensor(2.0, requires_grad=True)\ny = torch.sin(x ** 2)\ny.backward()",
                              0.01, api_name="/autograd_run")
    assert "x (): data 2  grad -2.61" in text  # cos(4) * 4 = -2.6146


def test_autograd_train_steps_lower_the_loss(app_url):
    from gradio_client import Client

    from playground.presets import NET

    # a session of its own: Train's step count is session state, and another test's Train in a shared session
    # would add its steps to these (clicks add up, by design)
    out = Client(app_url, verbose=False).predict(NET, 0.1, 10, api_name="/autograd_train")
    text, curve = out[0], out[4]
    losses = [row[1] for row in curve["data"]]
    assert len(losses) == 10 and losses[-1] < losses[0]
    assert "Last optimizer.step()" in text


def test_tensors_tab_in_browser(page):
    open_tab(page, "Tensors")
    editor = page.locator("#tensor-code .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    editor.fill("w = torch.arange(12.0).view(3, 4)\nprint(w.sum(dim=0))\nw.sum(dim=1)")
    page.locator("#tensor-run").click()
    page.wait_for_function("document.querySelector('#tensor-result textarea').value"
                           ".includes('tensor([12., 15., 18., 21.])')", timeout=60_000)
    page.wait_for_function("document.querySelector('#tensor-values textarea').value.includes('w: shape (3, 4)')",
                           timeout=30_000)
    assert "tensor([ 6., 22., 38.])" in page.locator("#tensor-values textarea").input_value()
    page.wait_for_selector("#tensor-pictures img", timeout=30_000)
    font = page.evaluate("getComputedStyle(document.querySelector('#tensor-result textarea')).fontFamily")
    assert "mono" in font.lower(), font  # tensor values line up in columns
    assert page.get_by_text("Limits here:").first.is_visible()


def test_tensors_tab_streams_a_program_and_cancels_it(page):
    """A whole program's output appears while it runs; Cancel stops a long one and the tab says so."""
    open_tab(page, "Tensors")
    editor = page.locator("#tensor-code .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    # four ticks, then silence: Cancel comes while the program prints nothing (it stops all the same)
    editor.fill("import time\nfor i in range(4):\n    print('tick', i, flush=True)\n    time.sleep(0.5)\n"
                "time.sleep(25)\nprint('tick 39')\n")
    page.locator("#tensor-run").click()
    page.wait_for_function("document.querySelector('#tensor-result textarea').value.includes('tick 3')",
                           timeout=60_000)
    assert "tick 39" not in page.locator("#tensor-result textarea").input_value()   # streamed, not at the end
    time.sleep(1)
    page.locator("#tensor-cancel").click()
    page.wait_for_function("document.querySelector('#tensor-status').innerText.includes('Cancelled')",
                           timeout=60_000)
    time.sleep(2)
    text = page.locator("#tensor-result textarea").input_value()
    assert "tick 39" not in text
    page.screenshot(path=str(ARTIFACTS / "tensors-streaming.png"), full_page=False)
    # the cancelled program is gone: the same visitor's next program runs at once (one program per visitor)
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    editor.fill("print('after cancel')")
    page.locator("#tensor-run").click()
    page.wait_for_function("document.querySelector('#tensor-result textarea').value.includes('after cancel')",
                           timeout=60_000)


def test_first_screens_show_the_default_presets_without_a_click(page):
    """Tensors and Autograd show their default preset's result on load (computed once per server; while the
    sandbox starts the status line says so and the screen fills in by itself)."""
    open_tab(page, "Tensors")
    page.wait_for_function("document.querySelector('#tensor-values textarea').value.includes('d: shape (2, 2)')",
                           timeout=120_000)
    assert "default preset" in page.locator("#tensor-status").inner_text()
    open_tab(page, "Autograd")
    page.wait_for_function("document.querySelector('#autograd-result textarea').value.includes('fc1.weight')",
                           timeout=120_000)
    page.locator("#autograd-graph img").wait_for(timeout=60_000)


def test_autograd_tab_in_browser(page):
    open_tab(page, "Autograd")
    page.locator("#autograd-run").click()
    # the visitor's own run has answered (the first screen shows the same program's result before it does)
    page.wait_for_function("document.querySelector('#autograd-status').innerText.includes('Ran in')",
                           timeout=60_000)
    assert "fc1.weight" in page.locator("#autograd-result textarea").input_value()
    graph = page.locator("#autograd-graph img")
    graph.wait_for(timeout=30_000)
    assert page.evaluate("(img) => img.naturalWidth", graph.element_handle()) > 400
    page.locator("#autograd-train").click()
    page.wait_for_function("document.querySelector('#autograd-result textarea').value.includes('Loss over 10 step')",
                           timeout=60_000)


def test_visitor_address_is_the_queues(monkeypatch):
    """The pool's fair share is per client address, the same one the queue's admission uses
    (ui.admission.client_ip: the proxy's hop on a Space, the socket peer elsewhere)."""
    from types import SimpleNamespace

    from ui.admission import client_ip
    from ui.tensors import visitor

    req = SimpleNamespace(session_hash="s1", client=SimpleNamespace(host="10.0.0.1"),
                          headers={"x-forwarded-for": "203.0.113.7, 198.51.100.2"})
    for space in ({}, {"SYSTEM": "spaces", "SPACE_ID": "someone/pytorch-playground"}):
        for key in ("SYSTEM", "SPACE_ID"):
            monkeypatch.delenv(key, raising=False)
        for key, value in space.items():
            monkeypatch.setenv(key, value)
        assert visitor(req) == {"session": "s1", "address": client_ip(req)}
    assert visitor(None) == {}


def test_every_code_panel_can_open_in_the_playground(app_demo):
    """Each read-only code panel has its own 'Open in the playground' button wired to the Tensors editor."""
    import gradio as gr

    from ui.i18n import label

    # (the Start-here tab's panels, labelled start.*, have their own Run button instead)
    start_here = {str(label(k)) for k in ("start.printed", "start.runnable", "start.example")}
    panels = [b for b in app_demo.blocks.values() if isinstance(b, gr.Code) and not b.interactive
              and str(b.label) not in start_here]
    buttons = [b for b in app_demo.blocks.values()
               if isinstance(b, gr.Button) and b.value == str(label("open.button"))]   # its gr.I18n key
    assert len(panels) >= 15 and len(buttons) == len(panels)
    editor = next(b for b in app_demo.blocks.values() if getattr(b, "elem_id", None) == "tensor-code")
    wired = [d for d in app_demo.config["dependencies"] if editor._id in [o for o in d["outputs"]]
             and len(d["inputs"]) == 1 and d["inputs"][0] in {p._id for p in panels}]
    assert len(wired) == len(panels)


def test_an_opened_snippet_runs_with_its_pictures(client, tmp_path):
    """The Classify panel's code, opened in the playground: its picture is put in the visitor's folder and the
    program runs fenced, printing the same top-5 as the tab."""
    import types

    from gradio_client import handle_file

    from playground.pool import get_sandbox, scratch_folder
    from playground.whole import shape
    from ui.open_in_playground import open_program

    digit = "ui/example_images/mnist_test_10_digit_7.png"
    label, _table, code, _summary = client.predict(handle_file(digit), api_name="/classify")
    session = f"opened-snippet-{time.time_ns()}"
    code, tabs, note = open_program(code, types.SimpleNamespace(session_hash=session))
    assert "Sample pictures put in your folder" in note
    raw = get_sandbox().request("tensors", session=session, code=code, scratch=scratch_folder(session))
    r = shape("tensors", raw, code, 0.01, 0)
    assert r["error"] is None, r["text"]
    top = r["stdout"].strip().splitlines()[-1]
    assert top.startswith("[(7, ") and str(label["label"]) == "7", top
