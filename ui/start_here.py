"""Start here / 从这里开始: the tutorial's table of contents, its sections in its order (ui/tutorial.toml). Each
section: a sentence or two, the tutorial's code as printed and a runnable version beside it, a button that runs
that version in the Tensors tab, and one that opens the tab where the topic lives. The text is static and shown in
the browser's language through gr.I18n (docs/language.md)."""
from __future__ import annotations

import gradio as gr

from ui import open_in_playground
from ui.common import ALONE, Place
from ui.i18n import label
from ui.tutorial import GO_KEYS, chapters

# After the code is loaded into the Tensors editor: press that tab's Run, as the visitor would (the run then goes
# through the same queue, sandbox and Cancel as their own), and show the program: the page was scrolled down to
# the section, which left a phone in the middle of the Tensors tab. The button is looked for until the tab shows it.
PRESS_RUN = """
() => new Promise((done) => {
  let tries = 0;
  const press = () => {
    const run = document.getElementById('tensor-run');
    if (run && run.offsetParent !== null) {
      run.click();
      const top = window.innerWidth > 700 ? 'tensor-preset' : 'tensor-code';   // wide: the output is beside it
      document.getElementById(top)?.scrollIntoView({block: 'start'});
      done();
    } else if (++tries < 60) setTimeout(press, 50);
    else done();
  };
  press();
})
"""
# Before a tab is brought to the front: the page to the tab bar, so the tab opens at its top (no inputs: none back).
SHOW_TABS = "() => { document.getElementById('main-tabs')?.scrollIntoView({block: 'start'}); return []; }"
CSS = """<style>
#start-here .tutorial-section {border-top: 1px solid var(--border-color-primary); padding-top: var(--size-2)}
#start-here .tutorial-section blockquote {font-size: var(--text-md); margin: var(--size-2) 0}
</style>"""
CODE_MIN_WIDTH = 340   # px: the two code panels side by side on a wide screen, one above the other on a phone
_PENDING: list[tuple[str, gr.Button, str]] = []   # ("run", button, code) / ("go", button, tab id), for wire()


def build_tab(place: Place = ALONE) -> dict:   # place: not needed here (ui.common.Place)
    """The contents, then every chapter and section. The buttons are wired by wire() once the tabs exist."""
    _PENDING.clear()
    with gr.Column(elem_id="start-here"):
        gr.Markdown(label("start.intro"), elem_id="start-intro")
        gr.Markdown(label("tutorial.contents"), elem_id="start-contents")
        for ch in chapters():
            gr.Markdown(label(f"tutorial.chapter.{ch.id}"), elem_classes=["tutorial-chapter"])
            for s in ch.sections:
                _section(s)
        gr.HTML(head=CSS, js_on_load=None)
    return {}


def _section(s) -> None:
    with gr.Column(elem_id=s.anchor, elem_classes=["tutorial-section"]):
        gr.Markdown(label(f"tutorial.section.{s.chapter}.{s.id}"))
        if s.printed or s.runnable:
            with gr.Row(equal_height=False):
                if s.printed:
                    gr.Code(s.printed, language="shell" if s.printed_language == "bash" else "python",
                            interactive=False, label=label("start.printed"), elem_classes=["code-panel"],
                            min_width=CODE_MIN_WIDTH)
                if s.runnable:
                    gr.Code(s.runnable, language="python", interactive=False,
                            label=label("start.runnable" if s.printed_language == "python" and s.printed
                                        else "start.example"),
                            elem_classes=["code-panel"], min_width=CODE_MIN_WIDTH)
        if s.runnable or s.tab in GO_KEYS:
            with gr.Row():
                if s.runnable:
                    run = gr.Button(label("start.run"), variant="primary", size="sm",
                                    elem_classes=["start-run"], elem_id=f"{s.anchor}-run")
                    _PENDING.append(("run", run, s.runnable))
                if s.tab in GO_KEYS:
                    go = gr.Button(label(GO_KEYS[s.tab]), size="sm", elem_classes=["start-go"],
                                   elem_id=f"{s.anchor}-go")
                    _PENDING.append(("go", go, s.tab))


def _runner(code: str):
    def run_in_playground(request: gr.Request = None):
        """The section's runnable code into the Tensors editor, that tab to the front (then PRESS_RUN runs it)."""
        return open_in_playground.open_program(code, request)
    return run_in_playground


def _opener(tab: str):
    def go_to_tab():
        return gr.Tabs(selected=tab)
    return go_to_tab


def wire(editor: gr.Code, tabs: gr.Tabs, status: gr.Markdown) -> int:
    """Connect the section buttons to the Tensors editor and the app's tabs; returns how many."""
    n = 0
    while _PENDING:
        kind, button, what = _PENDING.pop(0)
        if kind == "run":
            # through the queue, as Open in the playground (it writes sample pictures into the visitor's folder)
            button.click(_runner(what), None, [editor, tabs, status], api_visibility="private").then(
                None, None, None, js=PRESS_RUN, api_visibility="private")
        else:   # nothing but the tab to the front: no queue (tests/test_abuse_routes.py lists it)
            button.click(_opener(what), None, tabs, js=SHOW_TABS, api_visibility="private", queue=False,
                         show_progress="hidden")
        n += 1
    return n
