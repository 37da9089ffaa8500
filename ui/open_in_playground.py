"""'Open in the playground': every code panel the app shows gets a button that loads its code into the Tensors
tab, where it runs as shown. The pictures it reads by file name (digit.png, photo.jpg...) are put in the
visitor's own folder first (the tab's sample pictures: the visitor can replace them by saving their own there),
and the weights it reads are readable to the sandbox (zoo/weights is in its read-only list)."""
from __future__ import annotations

import io
import re
import shutil
import tokenize
from pathlib import Path

import gradio as gr

from core.i18n import t
from playground.pool import scratch_folder
from ui.i18n import label, request_language

EXAMPLES = Path(__file__).resolve().parent / "example_images"
_PENDING: list[tuple[gr.Button, gr.Code]] = []   # panels made since the last wire(), in build order


def button_for(panel: gr.Code) -> gr.Button:
    """The button under one code panel (called by ui.common.code_block)."""
    btn = gr.Button(label("open.button"), size="sm", variant="secondary", elem_classes=["open-in-playground"])
    _PENDING.append((btn, panel))
    return btn


def picture_names(code: str) -> list[str]:
    """Bare picture file names the program reads (string literals, comments left out)."""
    names = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            m = re.fullmatch(r"[\"']([\w\-]+\.(?:png|jpe?g))[\"']", tok.string)
            if tok.type == tokenize.STRING and m:
                names.add(m.group(1))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return sorted(names)[:8]


def _sample(name: str) -> Path:
    digits = sorted(EXAMPLES.glob("mnist_*digit_7.png")) or sorted(EXAMPLES.glob("*.png"))
    photos = sorted(p for p in EXAMPLES.glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    return photos[0] if (name.lower().endswith((".jpg", ".jpeg")) and photos) else digits[0]


def open_program(code: str, request: gr.Request = None):
    """The panel's code into the Tensors editor and that tab to the front; sample pictures for the files it
    reads, in the visitor's folder (an existing file of the visitor's is kept). The note is in the request's
    language."""
    code = code or ""
    folder = scratch_folder(getattr(request, "session_hash", None))
    added = []
    for name in picture_names(code):
        target = folder / name
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_sample(name), target)
            added.append(name)
    language = request_language(request)
    note = (t("open.loaded_samples", language, names=", ".join(added)) if added
            else t("open.loaded", language))
    return code, gr.Tabs(selected="tensors"), note


def wire(editor: gr.Code, tabs: gr.Tabs, status: gr.Markdown) -> int:
    """Connect every pending button to the Tensors editor; returns how many."""
    n = 0
    while _PENDING:
        btn, panel = _PENDING.pop(0)
        # through the queue (it writes into the visitor's folder): the admission caps apply to it too
        btn.click(open_program, panel, [editor, tabs, status], api_visibility="private")
        n += 1
    return n


def reset() -> None:
    """Forget panels of an app that was built and not wired (a failed build)."""
    _PENDING.clear()
