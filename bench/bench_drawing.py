"""Drawing on Classify's sketchpad (issue #26 item 3): how long the canvas takes to answer a mouse move while a
stroke is drawn, how many requests one stroke sends to the server, and how soon after the stroke the final
prediction is shown. Prints JSON (results: bench/results/drawing.json).

    python bench/bench_drawing.py --canvas                   # 3 strokes of 48 moves, each with and without reading
    python bench/bench_drawing.py --canvas --stroke-s 1      # strokes of one second (as many moves as fit)
    cd /tmp/old && PYTHONPATH=/tmp/old python <this file> --label before   # an export of an older commit

Starts the app (app.build_app + app.launch_kwargs) in this process on a free port and drives Chromium through
Playwright at 1300x1100 px, as tests/conftest.py does. A stroke is a vertical bar (a "1") drawn with the mouse,
one page.mouse.move per step, at most one every 16 ms (a 60 Hz pointer) when the page keeps up. Per stroke:

- move_ms: the wall time of each page.mouse.move (Chromium answers once the page has handled the event, so a busy
  main thread - the canvas' own drawing, PNG encoding, uploads, results being shown - shows here);
- input_delay_ms: in the page, performance.now() - event.timeStamp when a pointermove listener runs;
- requests: POSTs from the mouse-down until the result has settled, to /upload (files), /component_server (the
  sketchpad's blobs) and /queue/join (events); per second of the stroke too;
- final_ms: mouse-up to the prediction showing the digit, and whether it did (no lost final result).

--canvas adds strokes with nothing read (app.JS finds no button to click: the pad's own cost, a floor), taking
turns with the app's strokes in the same page, so the machine's load weighs on both alike. Chromium runs headless
with --disable-gpu, so the pad (a pixi.js WebGL canvas) is drawn in software: far slower than with a GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import time

CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
ROUTES = ("/gradio_api/upload", "/gradio_api/component_server", "/gradio_api/queue/join")
NAMES = ("upload", "component_server", "queue/join")
LABEL_JS = "document.querySelector('#prediction h2, #prediction .output-class')?.innerText.trim() || ''"
DELAY_JS = """() => {
  window.__delays = [];
  document.addEventListener('pointermove', (e) => {
    if (e.buttons) window.__delays.push(performance.now() - e.timeStamp);
  }, {capture: true, passive: true});
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stats(xs: list[float]) -> dict:
    xs = sorted(xs)
    return {"n": len(xs), "mean": round(statistics.mean(xs), 1), "p50": round(statistics.median(xs), 1),
            "p90": round(xs[int(0.9 * (len(xs) - 1))], 1), "max": round(xs[-1], 1)}


def _stroke(page, moves: int, spacing_ms: float, x_frac: float, stroke_s: float = 0.0
            ) -> tuple[list[float], float, float]:
    """A vertical bar at x_frac of the canvas' width, `moves` mouse moves (or, with stroke_s, as many as the page
    takes in that many seconds, each to where the pointer would be by then); (ms per move, seconds from mouse-down to
    mouse-up, mouse-up time)."""
    canvas = page.locator("#digit-sketch canvas").last
    box = canvas.bounding_box()
    x = box["x"] + box["width"] * x_frac
    y0, y1 = box["y"] + box["height"] * 0.15, box["y"] + box["height"] * 0.85
    page.mouse.move(x, y0)
    page.mouse.down()
    down = time.perf_counter()
    took = []
    for i in range(1, moves + 1 if not stroke_s else 10**6):
        t0 = time.perf_counter()
        frac = i / moves if not stroke_s else min(1.0, (t0 - down) / stroke_s)
        page.mouse.move(x, y0 + (y1 - y0) * frac)
        if stroke_s and frac >= 1.0:
            took.append((time.perf_counter() - t0) * 1000)
            break
        dt = time.perf_counter() - t0
        took.append(dt * 1000)
        if dt < spacing_ms / 1000:
            time.sleep(spacing_ms / 1000 - dt)
    page.mouse.up()
    up = time.perf_counter()
    return took, up - down, up


HIDE_BUTTONS = """(on) => ['go', 'live'].forEach((k) => {
  const b = document.getElementById('digit-sketch-' + k) || document.getElementById('off-digit-sketch-' + k);
  if (b) b.id = (on ? '' : 'off-') + 'digit-sketch-' + k;
})"""


def _summary(strokes: list[dict], all_moves: list[float], all_delays: list[float]) -> dict:
    return {
        "strokes": len(strokes),
        "ms_per_move": _stats(all_moves),
        "input_delay_ms": _stats(all_delays) if all_delays else None,
        "stroke_s_p50": statistics.median(x["stroke_s"] for x in strokes),
        "requests_per_stroke": round(statistics.mean(x["requests"]["total"] for x in strokes), 1),
        "requests_per_stroke_max": max(x["requests"]["total"] for x in strokes),
        "requests_per_s_max": max(round(x["requests"]["total"] / x["stroke_s"], 2) for x in strokes),
        "final_ms_p50": statistics.median([x["final_ms"] for x in strokes if x["final_ms"] is not None] or [-1]),
        "final_result_shown": all(x["final_result_shown"] for x in strokes),
    }


def run(label: str, strokes: int, moves: int, spacing_ms: float, modes: tuple[str, ...] = ("app",),
        stroke_s: float = 0.0) -> dict:
    """`strokes` strokes per mode, the modes taking turns stroke by stroke in one page (the machine's load then
    weighs on each alike). app: the page as served; canvas: app.JS finds no button to click, so nothing is read
    (the pad's own cost, a floor; this checkout only)."""
    import app as app_module
    from playwright.sync_api import sync_playwright

    demo = app_module.build_app()
    kw = app_module.launch_kwargs(host="127.0.0.1", port=_free_port())
    demo.launch(prevent_thread_lock=True, quiet=True, **kw)
    url = demo.local_url.rstrip("/")
    out = {"label": label, "moves_per_stroke": moves if not stroke_s else None, "stroke_s": stroke_s or None,
           "spacing_ms": spacing_ms, "load_avg_1m": round(os.getloadavg()[0], 2),
           "strokes": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            page = browser.new_context(viewport={"width": 1300, "height": 1100}).new_page()
            page.set_default_timeout(60_000)
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_function("document.querySelector('#prediction')?.innerText.includes('%')")  # first screen
            page.evaluate(DELAY_JS)
            page.locator("#digit-sketch canvas").last.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)
            posts: list[str] = []
            page.on("request", lambda r: r.method == "POST" and any(p in r.url for p in ROUTES) and posts.append(r.url))
            for k in range(strokes * len(modes)):
                mode = modes[k % len(modes)]
                page.evaluate(HIDE_BUTTONS, True)
                page.get_by_label("Clear canvas").click()
                page.wait_for_function(f"!({LABEL_JS})", timeout=30_000)   # the cleared pad's reading arrived
                page.wait_for_timeout(1500)
                page.evaluate(HIDE_BUTTONS, mode != "canvas")
                posts.clear()
                page.evaluate("window.__delays = []")
                took, took_s, up = _stroke(page, moves, spacing_ms, 0.3 + 0.05 * k, stroke_s)
                final_ms, got = None, False
                if mode != "canvas":
                    try:
                        page.wait_for_function(f"({LABEL_JS}) === '1'", timeout=30_000, polling=20)
                        final_ms, got = round((time.perf_counter() - up) * 1000), True
                    except Exception:  # noqa: BLE001 - the final result never came: that is the finding
                        pass
                page.wait_for_timeout(2500)                                  # anything still in flight
                counts = {name: sum(route in p for p in posts) for name, route in zip(NAMES, ROUTES)}
                if os.environ.get("BENCH_DRAWING_DEBUG"):
                    print(mode, posts)
                out["strokes"].append({"mode": mode, "move_ms_all": [round(t, 1) for t in took],
                                       "input_delay_ms_all": [round(t, 1) for t in page.evaluate("window.__delays")],
                                       "stroke_s": round(took_s, 2), "requests": {**counts, "total": len(posts)},
                                       "final_ms": final_ms, "final_result_shown": got})
            browser.close()
    finally:
        demo.close()
    out["modes"] = {}
    for mode in modes:
        s = [x for x in out["strokes"] if x["mode"] == mode]
        out["modes"][mode] = _summary(s, [t for x in s for t in x.pop("move_ms_all")],
                                      [t for x in s for t in x.pop("input_delay_ms_all")])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", default="after")
    ap.add_argument("--strokes", type=int, default=5)
    ap.add_argument("--moves", type=int, default=48)
    ap.add_argument("--spacing-ms", type=float, default=16.0)
    ap.add_argument("--stroke-s", type=float, default=0.0,
                    help="strokes of this many seconds (as many moves as the page takes) instead of --moves moves")
    ap.add_argument("--canvas", action="store_true",
                    help="also strokes with nothing read (the pad's own cost), taking turns with the app's")
    ap.add_argument("--out", help="also merge the result into this JSON file under its label")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    res = run(args.label, args.strokes, args.moves, args.spacing_ms, ("app", "canvas") if args.canvas else ("app",),
              args.stroke_s)
    print(json.dumps({"label": args.label, "load_avg_1m": res["load_avg_1m"], **res["modes"]}))
    if args.out:
        try:
            with open(args.out) as f:
                allres = json.load(f)
        except (OSError, ValueError):
            allres = {}
        allres[args.label] = res
        with open(args.out, "w") as f:
            json.dump(allres, f, indent=1)


if __name__ == "__main__":
    main()
