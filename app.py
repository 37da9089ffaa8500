"""PyTorch Playground: a tabbed Gradio app that shows PyTorch working on your own input.

    python app.py [--host 0.0.0.0] [--port 7860] [--share]

Importing this module starts nothing: build_app() returns the Blocks, and only __main__ launches it.
"""
from __future__ import annotations

import argparse
import gc
import os
import threading

if __name__ == "__main__":
    # A start from the command line: no cyclic garbage collection until the server answers (main() turns it back
    # on). Importing torch and gradio and building the page make ~550k long-lived objects, and the collector walked
    # them again and again while they were made: ~0.6 s of a ~3.5 s start (bench/bench_startup.py). `import app`
    # (tests, benchmarks) leaves the collector alone.
    gc.disable()

from core import tempfiles  # noqa: E402  (before gradio: GRADIO_TEMP_DIR is read when gradio starts)

# Before gradio is imported: no analytics or version pings, so an offline start never waits on a timeout.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Uploads and served files share the one pruned temp root (core/tempfiles.py) with the runs' own files.
os.environ.setdefault("GRADIO_TEMP_DIR", str(tempfiles.temp_root(create=False)))

import gradio as gr  # noqa: E402
from gradio import routes as gradio_routes  # noqa: E402

from ui import autoencoder, autograd, classify, data, ensembles_compression, finetune, gan, tensors  # noqa: E402
from ui import admission, first_screens, gpu, look_inside, open_in_playground, sessions  # noqa: E402
from ui import start_here  # noqa: E402
from ui.common import Place  # noqa: E402
from ui.examples import photo_examples  # noqa: E402
from ui.i18n import LANGUAGE_HEAD, install_language_switch, label, page_i18n, tab_label  # noqa: E402
from playground import fence  # noqa: E402
from playground import pool as sandbox_pool  # noqa: E402
from core.device import use_serving_threads  # noqa: E402
from zoo.space import on_space  # noqa: E402

# (tab title, builder), in the tutorial's order after the classifier that greets a visitor.
# Each builder lays out one tab inside the current gr.Tab context; it is handed the page and that tab
# (ui.common.Place) for its page-load and first-visit events.
TABS = [
    ("Start here", start_here.build_tab),   # the tutorial's contents, each section linked to its tab
    ("Classify", classify.build_tab),
    ("Tensors", tensors.build_tab),
    ("Autograd", autograd.build_tab),
    ("Autoencoder", autoencoder.build_tab),
    ("GAN", gan.build_tab),
    ("Data", data.build_tab),
    ("Fine-tune", finetune.build_tab),
    ("Ensembles & compression", ensembles_compression.build_tab),
    ("Look inside", look_inside.build_tab),
]

QUEUE_MAX_SIZE = 64          # waiting requests beyond this are refused with "queue full", not left hanging;
                             # ui/admission.py caps each visitor's share (4 by default), so no one fills it
MAX_FILE_SIZE = "100mb"      # uploads above this are refused before our code sees them (a fine-tuned
                             # ResNet-18 is 45 MB; images have their own 25 MB cap in zoo/images.py)
ANALYTICS_EVERY = 1000       # events between two recomputations of Gradio's monitoring summary (see build_app)
# In the page, once: (1) Sketchpads start with no tool selected in Gradio 6; select the brush so a visitor can draw
# at once. (2) A sketchpad with the class live-sketch is read while it is drawn on, at a bounded rate: its hidden
# button "<elem_id>-live" is clicked LIVE_MS into a stroke and at most every LIVE_MS after that, and "<elem_id>-go"
# once the pad's editor reports a change (a stroke committed, Undo, Redo, Clear), so the last drawing is always read.
# (3) window.playgroundDrawing(elem_id): that pad's picture as a PNG data URL, for the button's event (its js=,
# ui/classify.py), read from the pad's own editor as Gradio composites it. The pad is never an event's input:
# Gradio 6.31 re-encodes and uploads (3 files) a sketchpad that is the input of a finished event at every status
# update of every event, ~50 uploads per stroke (bench/bench_drawing.py). Gradio's ImageEditor sets window.editor
# to each editor it mounts; each is kept here with its element. The page is scanned once per frame the DOM changed.
JS = """
() => {
  const LIVE_MS = 400;
  const pick = (el) => {
    if (el.offsetParent === null || !el.innerText.includes('select the draw tool')) return;
    const b = el.querySelector('button[aria-label="Brush"]');
    if (b) b.click();
  };
  const editors = [], finishers = new Map();
  let latest = window.editor;
  const keep = (ed) => {
    if (!ed || !ed.target_element || editors.includes(ed)) return;
    editors.push(ed);
    ed.on('change', () => finishers.get(ed.target_element.closest('.live-sketch')?.id)?.());
  };
  keep(latest);
  Object.defineProperty(window, 'editor', {configurable: true, get: () => latest,
                                          set: (ed) => { latest = ed; keep(ed); }});
  const composite = async (ed) => {
    try {   // the composite alone, as Gradio's own export makes it (its get_blobs also exports every layer)
      const target = ed.layer_manager.image_container;
      const frame = target.getLocalBounds().rectangle.clone();
      Object.assign(frame, {x: 0, y: 0, width: ed.width, height: ed.height});
      const {pixels, width, height} = ed.app.renderer.extract.pixels({target, resolution: 1, frame});
      for (let i = 0; i < pixels.length; i += 4) {          // WebGL gives premultiplied alpha
        const a = pixels[i + 3];
        if (a && a < 255) for (let j = 0; j < 3; j++) pixels[i + j] = pixels[i + j] * 255 / a;
      }
      const canvas = Object.assign(document.createElement('canvas'), {width, height});
      const ctx = canvas.getContext('2d');
      const data = ctx.createImageData(width, height);
      data.data.set(pixels);
      ctx.putImageData(data, 0, 0);
      return canvas.toDataURL('image/png');
    } catch (e) {
      const blob = (await ed.get_blobs()).composite;
      if (!blob) return null;
      return await new Promise((ok) => {
        const r = new FileReader();
        r.onload = () => ok(r.result);
        r.readAsDataURL(blob);
      });
    }
  };
  window.playgroundDrawing = async (id) => {
    const pad = document.getElementById(id);
    const ed = pad && editors.filter((e) => e.target_element.isConnected && pad.contains(e.target_element)).pop();
    return ed ? await composite(ed) : null;
  };
  const live = (pad) => {
    if (pad.dataset.live || !document.getElementById(pad.id + '-go')) return;
    pad.dataset.live = '1';
    let touched = false, down = false, begun = 0, sent = -1e9, timer = null;
    const send = (final) => {
      timer = null;
      sent = performance.now();
      (!final && document.getElementById(pad.id + '-live') || document.getElementById(pad.id + '-go'))?.click();
    };
    const at = (t, final) => {
      clearTimeout(timer);
      timer = setTimeout(() => send(final), Math.max(0, t - performance.now()));
    };
    finishers.set(pad.id, () => touched && at(performance.now() + 30, true));   // touched: not at start-up
    pad.addEventListener('pointerdown', () => { touched = down = true; begun = performance.now(); }, true);
    pad.addEventListener('pointermove', () => {
      if (down && timer === null) at(Math.max(begun, sent) + LIVE_MS, false);
    }, true);
    const up = () => { down = false; };
    window.addEventListener('pointerup', up, true);
    window.addEventListener('pointercancel', up, true);
  };
  let queued = false;
  const scan = () => {
    queued = false;
    document.querySelectorAll('.auto-brush').forEach(pick);
    document.querySelectorAll('.live-sketch').forEach(live);
  };
  new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(scan); }
  }).observe(document.body, {childList: true, subtree: true, attributes: true});
  scan();
}
"""
CSS = """
.gradio-container {max-width: 1280px !important}
/* A tab's message sits under the input it is about (ui.common.status_box), not as red badges on the outputs. */
.input-status {border-left: 4px solid #d97706; background: #fffbeb; color: #78350f; padding: 6px 10px !important;
               border-radius: 4px}
.input-status p {margin: 0 !important}
.dark .input-status {background: #3b2a0a; color: #fde68a}
/* Code panels: monospace everywhere, long lines scroll instead of being cut. */
.code-panel .cm-scroller {overflow-x: auto}
/* torchinfo's summary is a fixed-width table: keep its columns, scroll sideways on a narrow screen. */
#inspect-sum-text pre {white-space: pre; overflow-x: auto; font-size: 12px; line-height: 1.35}
/* Result tables: one line per header and cell; a narrow screen scrolls the table sideways instead. */
#classify-compare th, #classify-compare td {white-space: nowrap}
/* Charts with text (histograms, bars) on a narrow screen: keep a readable size and scroll sideways. */
@media (max-width: 700px) {
  .wide-picture .image-container, .wide-picture .image-frame {overflow-x: auto !important}
  .wide-picture img {min-width: 680px !important; max-width: none !important; height: auto !important}
  #ae-map img {min-width: 500px !important}
}
/* GAN gallery: as many 84 px tiles per row as fit (8 at 1280 px, 3-4 at 414 px) instead of a fixed 8 that
   overflowed; each caption in a small monospace font under its tile, as the caption key above the gallery says
   (Gradio lays a caption over the bottom of its picture, where it hid the lower half of a digit); the gallery's
   label on a line above the tiles instead of over the first one. */
#gan-gallery .grid-container {grid-template-columns: repeat(auto-fill, minmax(88px, 1fr)) !important}
#gan-gallery .thumbnail-item {aspect-ratio: auto !important; height: auto !important; display: flex;
                              flex-direction: column}
#gan-gallery .thumbnail-item > img {aspect-ratio: 1 / 1; height: auto !important}
#gan-gallery .caption-label {font-size: 12px; font-family: ui-monospace, monospace; white-space: nowrap;
                             overflow: visible; position: static !important; max-width: none !important;
                             border: 0 !important; border-radius: 0 !important; text-align: center;
                             opacity: 1 !important}
#gan-gallery > label[data-testid=block-label] {position: relative}
/* Download lists: a long file name wraps instead of being cut to "resnet_....safetensors" (two files that end
   alike could not be told apart on a phone). */
.file-preview .filename .stem {white-space: normal; overflow-wrap: anywhere; text-overflow: clip}
/* A slider's label keeps at least 7 characters' width (and its longest word's): where the label and the number box
   do not fit side by side (a narrow column on a phone), the box goes under the label instead of squeezing it to a
   character per line. */
.block .head:has(> .tab-like-container) > label > [data-testid="block-info"] {min-width: 7em}
/* A dropdown's chosen value cannot wrap: those whose values are long get a column wide enough to show them whole
   (Data's padding_mode and the resampling's code method, Look inside's target class and layer to compare), and
   take a line of their own where that does not fit beside the rest. Gradio puts a row's inputs in one .form,
   whose own min-width is the largest of theirs: both get it. Look inside's Compare choices likewise (on a phone
   they were squeezed beside the upload box, three short lines each). */
:is(#padding-mode, #inspect-target, #inspect-cmp-layer, #inspect-cmp-mode),
.form:has(> :is(#padding-mode, #inspect-target, #inspect-cmp-layer, #inspect-cmp-mode)),
.row:has(> #resample-btn) .block:has(input[role=combobox]) {min-width: min(250px, 100%) !important}
/* Tables in pairs (Fine-tune's per-class and confusion tables, Autograd's leaves and optimizer step): side by side
   on a wide screen, one under the other on a phone (two 115 px tables with 4-line titles). */
@media (max-width: 700px) {#ft-per-class, #ft-confusion, #autograd-leaves, #autograd-steps {min-width: 100% !important}}
/* Phones: long picture labels float over the picture's corner, and its buttons over the label's end. The Tensors
   gallery's label takes a line of its own above the tiles; the Ensembles sketchpad's toolbar goes under its label. */
@media (max-width: 700px) {
  #tensor-pictures > label[data-testid=block-label] {position: relative; max-width: calc(100% - 40px)}
  #ens-sketch .image-container > .icon-button-wrapper.top-panel {top: 28px}
}
/* Gradio drops a Checkbox's min_width (its block gets min-width 0): beside a wide slider on a phone its label was
   squeezed into a column 3 characters wide. A checkbox among other inputs takes at least a narrow column's width
   and goes to the next line where that does not fit. */
.form > .block:has(> .checkbox-container) {min-width: min(200px, 100%) !important}
/* Classify's one-line answer under the input: only where the Prediction box is not beside the input. */
#classify-guess {font-size: var(--text-lg)}
@media (min-width: 701px) {#classify-guess {display: none !important}}
/* Phones: every tab's button stays in the bar, which wraps onto more rows, instead of hiding behind "...". Gradio's
   Tabs measure the buttons in a hidden copy of the bar and move those that do not fit into a menu; measured as
   empty, every button fits. The app's tab bar (#main-tabs) and every tab's own Tabs (ui.common.TABS_CLASS). */
@media (max-width: 700px) {
  :is(#main-tabs, .wrap-tabs) > .tab-wrapper > .tab-container.visually-hidden > button {display: none !important}
  :is(#main-tabs, .wrap-tabs) > .tab-wrapper {height: auto !important}
  :is(#main-tabs, .wrap-tabs) > .tab-wrapper > .tab-container[role=tablist] {flex-wrap: wrap; height: auto !important;
    row-gap: 2px}
  :is(#main-tabs, .wrap-tabs) > .tab-wrapper > .tab-container[role=tablist] > button {height: var(--size-8);
    padding: 0 var(--size-3)}
}
"""


def build_app() -> gr.Blocks:
    """The whole app: one gr.Tab per TABS entry, with a bounded queue."""
    gpu.install()   # on a ZeroGPU Space: jobs through spaces.GPU, interactive work on the CPU; elsewhere a no-op
    open_in_playground.reset()
    demo = gr.Blocks(title="PyTorch Playground")
    _fastapi_app_at_launch_only(demo, building=True)
    with demo:
        gr.Markdown(label("header.intro"))   # the title and one line, in the browser's language
        built = {}
        # the page opens on Start here, the tutorial's table of contents, first in the bar (issue #25)
        with gr.Tabs(elem_id="main-tabs", selected="start-here") as tabs:
            for title, build in TABS:
                with gr.Tab(tab_label(title), id=title.lower().replace(" ", "-")) as tab:   # in the browser's language
                    built[title] = build(Place(demo, tab))   # the page and its tab, for first-visit events
        # every code panel's "Open in the playground" loads its code into the Tensors editor
        open_in_playground.wire(built["Tensors"]["code"], tabs, built["Tensors"]["status"])
        start_here.wire(built["Tensors"]["code"], tabs, built["Tensors"]["status"])   # its Run and Open buttons
        # the examples' names, the models' notes and the tables' headers in the page's language, on every page load
        # and after a switch in Settings -> Language (ui/i18n.py install_language_switch)
        switch = install_language_switch(demo)
        # a first screen that arrives late never replaces what the visitor asked for meanwhile
        first_screens.never_overwritten(demo, not_the_visitors=[switch])
    # Gradio's queue rebuilds a pandas summary of the last 10,000 events after every event, for its /monitoring
    # page (turned off in launch_kwargs): 2 ms of server CPU per request with 100 events recorded, 12.7 ms with
    # 10,000, i.e. on every request of a Space that has been up a while. Once per 1,000 events costs nothing.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(ANALYTICS_EVERY))
    # api_open=False: Gradio's REST routes (/gradio_api/run/<name>, /gradio_api/api/<name>) refuse a queued event
    # (HTTP 404) instead of running it at once, outside the queue's concurrency limits and ui/admission's caps.
    # Gradio closes them by itself only on a Space (utils.get_space), not locally or through a --share link.
    demo.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=2, api_open=False)
    admission.install(demo)
    sessions.install(demo)   # bounded sessions and unread results (ui/sessions.py, ui/queue_bounds.py)
    _fastapi_app_at_launch_only(demo, building=False)
    return demo


def _fastapi_app_at_launch_only(demo: gr.Blocks, building: bool) -> None:
    """Gradio builds a Blocks' FastAPI app (~80 routes, and the page's config once more) when its `with` closes,
    again in queue(), and a last time in launch(), which replaces the other two: ~0.15 s of the start thrown away
    (bench/bench_startup.py). While build_app builds demo, Gradio's App.create_app skips it (demo.app stays None
    until launch or queue() is called again; nothing reads it before); every other Blocks is built as Gradio does.
    App.create_app is wrapped once per process (a staticmethod in Gradio 6.31: KeyError at start where it is not)."""
    real = gradio_routes.App.__dict__["create_app"]
    if not getattr(real.__func__, "_playground_wrapped", False):
        build = real.__func__

        def create_app(blocks, *args, **kwargs):
            return None if getattr(blocks, "_playground_building", False) else build(blocks, *args, **kwargs)

        create_app._playground_wrapped = True
        gradio_routes.App.create_app = staticmethod(create_app)
    demo._playground_building = building


def launch_kwargs(host: str | None = None, port: int | None = None, share: bool = False) -> dict:
    """Safe launch settings shared by __main__, the tests and the benchmarks."""
    return dict(
        server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        share=share,
        ssr_mode=False,           # gradio 6.27-6.31 have an auth bypass with SSR on
        max_file_size=MAX_FILE_SIZE,
        show_error=True,
        enable_monitoring=False,  # Gradio's /monitoring dashboard (every visitor's events and timings): not used
        css=CSS,
        i18n=page_i18n(),         # static text in the browser's language (ui/i18n.py, docs/language.md)
        head=LANGUAGE_HEAD,       # every request carries the page's language, for the server's messages
        js=JS,
        # scikit-image's sample photos (Classify's, Autoencoder's and Look inside's examples) are served from where
        # the package is installed: on a Space that is /usr/local, outside what Gradio serves unasked
        allowed_paths=sorted({os.path.dirname(path) for _, path in photo_examples()}),
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="PyTorch Playground")
    ap.add_argument("--host", help="interface to bind (default GRADIO_SERVER_NAME or 127.0.0.1; 0.0.0.0 for LAN)")
    ap.add_argument("--port", type=int, help="port (default GRADIO_SERVER_PORT or 7860)")
    ap.add_argument("--share", action="store_true", help="also open a public *.gradio.live link")
    args = ap.parse_args(argv)
    kw = launch_kwargs(args.host, args.port, args.share)
    # Reachable by others (a share link, another interface, a Space): where the OS fence cannot be built, the
    # sandbox then runs its restricted language instead of whole programs (playground/pool.py).
    sandbox_pool.set_public(args.share or on_space() or kw["server_name"] not in ("127.0.0.1", "localhost", "::1"))
    tempfiles.start_janitor()
    use_serving_threads()
    fence.non_dumpable()  # no process of our user (a sandboxed program included) reads our memory or environment
    demo = build_app()
    demo.launch(prevent_thread_lock=True, **kw)
    # The server answers: the start's objects live as long as the process, so the collector leaves them out of
    # every later collection (gc.freeze: a full collection then walks what the visitors' requests made, not ~550k
    # objects, ~0.3 s). The cycles the imports left (~20k objects, a few MB) stay with them.
    gc.freeze()
    gc.enable()
    # the sandbox's template imports torch & co. in a process of its own: started once the server answers
    # and the sandbox tabs' first screens (the default presets) computed once, before the first visitor asks
    threading.Thread(target=first_screens.warm, daemon=True, name="sandbox-prewarm").start()
    demo.block_thread()


if __name__ == "__main__":
    main()
