"""The public Space, round two (issue #23), as an attacker sees it: Gradio's REST routes around the queue, forged
X-Forwarded-For headers, hostile pictures and zips, the job workers' environment. Two clients where that is the
attack; time bounds as loose as a busy 2-core machine always meets."""
from __future__ import annotations

import concurrent.futures as cf
import time
import uuid

import httpx
import pytest

from tests import queue_api

VICTIM_BOUND_S = 30.0        # a victim's /classify while the attack runs (idle: ~0.1 s)


def _session() -> str:
    return uuid.uuid4().hex[:11]


def _digit_png(tmp_path) -> str:
    from PIL import Image

    from training.data.datasets import mnist5k

    x = mnist5k().test_x[0, 0].numpy()
    path = tmp_path / f"digit-{uuid.uuid4().hex[:6]}.png"
    Image.fromarray((x * 255).clip(0, 255).astype("uint8")).save(path)
    return str(path)


def _victim_classify(app_url: str, png: str) -> float:
    """A second visitor's /classify through gradio_client (the queue): its wall time in seconds."""
    from gradio_client import Client, handle_file

    victim = Client(app_url, verbose=False)
    t0 = time.perf_counter()
    label, *_ = victim.predict(handle_file(png), api_name="/classify")
    assert label["label"]
    return time.perf_counter() - t0


# ------------------------------------------------------------------ Gradio's internals (issue #26 item 10)

def test_the_patched_gradio_internals_are_checked_at_start(monkeypatch):
    """ui.admission, ui.sessions and ui.queue_bounds patch Gradio 6.31's private queue, session and sketchpad
    internals: pyproject pins that minor release, and each module checks the internals it uses before it patches
    anything, refusing to start (loudly) where they changed instead of leaving a public server unbounded."""
    import tomllib

    import gradio as gr
    from gradio import queueing

    from tests.conftest import ROOT
    from ui import admission, queue_bounds, sessions

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "gradio[oauth]==6.31.*" in deps and gr.__version__.startswith("6.31.")
    with gr.Blocks() as demo:
        gr.ImageEditor()
    demo.queue(api_open=False)
    admission._check_gradio(demo)
    sessions._check_gradio()
    queue_bounds._check_gradio(demo._queue)

    async def push(self, body, request):            # a future Gradio whose push takes other arguments
        return True, "", "success"

    monkeypatch.setattr(queueing.Queue, "push", push)
    with pytest.raises(RuntimeError, match=r"ui\.admission was written for Gradio 6\.31.*Queue\.push"):
        admission.install(demo)
    with pytest.raises(RuntimeError, match=r"ui\.queue_bounds was written for Gradio 6\.31.*Queue\.push"):
        queue_bounds.install(demo)
    monkeypatch.undo()

    def event_queue_init(self, concurrency_id, concurrency_limit):   # events kept under another name
        self.events = []

    monkeypatch.setattr(queueing.EventQueue, "__init__", event_queue_init)
    with pytest.raises(RuntimeError, match="EventQueue no longer keeps its events"):
        admission._check_gradio(demo)


# ------------------------------------------------------------------ 1. the REST routes around the queue

def test_on_space_agrees_with_gradio(monkeypatch):
    from gradio import utils

    from zoo.space import on_space

    for system, space_id in [(None, None), (None, "me/space"), ("spaces", None), ("spaces", ""), ("other", "me/x"),
                             ("spaces", "me/space")]:
        for name, value in (("SYSTEM", system), ("SPACE_ID", space_id)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        assert on_space() == bool(utils.get_space()), (system, space_id)
    assert on_space()


def _upload(app_url: str, path: str) -> dict:
    with open(path, "rb") as f:
        r = httpx.post(f"{app_url}/gradio_api/upload", files={"files": f}, timeout=30)
    r.raise_for_status()
    return {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}}


@pytest.mark.timeout(240)
def test_rest_routes_refuse_every_queued_event(app_url, app_demo, tmp_path):
    """/run/<name>, /run/predict and /api/predict with an fn_index: each queued event is refused (404), none runs."""
    queued = [i for i, fn in app_demo.fns.items() if fn.queue]
    assert len(queued) > 20
    image = _upload(app_url, _digit_png(tmp_path))
    classify = queue_api.fn_index(app_demo, "classify")
    with httpx.Client(timeout=30) as http:
        for route, body in [("run/classify", {"data": [image, "resnet_digits", 5]}),
                            ("api/classify", {"data": [image, "resnet_digits", 5]}),
                            ("run/predict", {"data": [image, "resnet_digits", 5], "fn_index": classify}),
                            ("api/predict", {"data": [image, "resnet_digits", 5], "fn_index": classify,
                                             "session_hash": _session()})]:
            r = http.post(f"{app_url}/gradio_api/{route}", json=body)
            assert r.status_code == 404 and "join the queue" in r.json()["detail"], (route, r.text[:300])
        for i in queued:   # every queued event by index, the private ones included
            r = http.post(f"{app_url}/gradio_api/run/predict", json={"data": [], "fn_index": i})
            assert r.status_code == 404, (i, app_demo.fns[i].name, r.text[:200])
    # What still runs outside the queue (Gradio's /run routes serve these to the browser): the sandbox tabs'
    # warm-up hooks and Cancel note, the reset of a step counter, filling inputs from an example, copying a code
    # panel into the Tensors editor (ui/open_in_playground), a Start-here button bringing a tab to the front
    # (go_to_tab: no work), and events with no Python. A new one must be added here knowingly.
    unqueued = {fn.name for fn in app_demo.fns.values() if not fn.queue}
    assert unqueued <= {"prewarm", "cancelled_note", "<lambda>", "load_example", None, "tensors_first_screen",
                        "tensors_first_screen_check", "autograd_first_screen", "autograd_first_screen_check",
                        "go_to_tab"}, unqueued


@pytest.mark.timeout(240)
def test_rest_flood_is_refused_and_the_victim_answers(app_url, app_demo, tmp_path):
    """A dozen direct /run/classify calls at once from one attacker (they used to run at once, outside every cap):
    all refused, none of them held the server, and a victim's /classify through the queue answers meanwhile."""
    image = _upload(app_url, _digit_png(tmp_path))
    png = _digit_png(tmp_path)
    session = _session()
    body = {"data": [image, "resnet50", 5], "session_hash": session}   # an ImageNet-size model if it had run

    def attack(_):
        try:
            return httpx.post(f"{app_url}/gradio_api/run/classify", json=body, timeout=120).status_code
        except httpx.HTTPError as exc:
            return repr(exc)

    with cf.ThreadPoolExecutor(12) as pool:
        flood = [pool.submit(attack, k) for k in range(12)]
        took = _victim_classify(app_url, png)
        codes = [f.result() for f in flood]
    assert codes == [404] * 12, codes
    assert took < VICTIM_BOUND_S, took


# ------------------------------------------------------------------ 10. whose address is it

VICTIM_IP = "203.0.113.5"         # documentation addresses (RFC 5737): what the Space's proxy saw
ATTACKER_IP = "198.51.100.7"


def _behind_space_proxy(sent: str | None, real: str) -> dict:
    """The X-Forwarded-For a Space's proxy passes on: the visitor's own header, if any, with their real address
    appended (each proxy appends the peer it received the request from)."""
    return {"x-forwarded-for": f"{sent}, {real}" if sent else real}


@pytest.fixture
def on_a_space(monkeypatch):
    """This process is a Space, as Gradio and zoo.space decide it."""
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("SPACE_ID", "someone/pytorch-playground")


def test_client_ip_is_the_address_the_proxy_appended(on_a_space):
    from types import SimpleNamespace as NS

    from starlette.datastructures import Headers

    from ui.admission import client_ip

    def ip(*lines, peer="10.16.3.80"):
        raw = [(b"x-forwarded-for", v.encode()) for v in lines]
        return client_ip(NS(headers=Headers(raw=raw), client=NS(host=peer)))

    assert ip(VICTIM_IP) == VICTIM_IP                                           # no header of the visitor's own
    assert ip(f"{VICTIM_IP}, {ATTACKER_IP}") == ATTACKER_IP                     # the attacker claims the victim's
    assert ip(f"1.1.1.1, 8.8.8.8, {ATTACKER_IP}") == ATTACKER_IP                # ... or a chain of made-up hops
    assert ip(f"10.0.0.9, 127.0.0.1, {ATTACKER_IP}") == ATTACKER_IP              # ... or internal ones
    assert ip("8.8.8.8", ATTACKER_IP) == ATTACKER_IP                             # two header lines are one list
    assert ip(f"{ATTACKER_IP}, 10.16.0.4") == ATTACKER_IP                        # a second, internal proxy hop
    assert ip(" , junk, " + ATTACKER_IP) == ATTACKER_IP
    assert ip() == "10.16.3.80"                                                 # no header at all: the peer


def test_client_ip_off_a_space_ignores_the_header(monkeypatch):
    from types import SimpleNamespace as NS

    from ui.admission import client_ip

    monkeypatch.delenv("SYSTEM", raising=False)
    monkeypatch.setenv("SPACE_ID", "someone/pytorch-playground")   # SPACE_ID alone is not a Space (Gradio agrees)
    req = NS(headers={"x-forwarded-for": f"{VICTIM_IP}, {ATTACKER_IP}"}, client=NS(host="192.168.1.20"))
    assert client_ip(req) == "192.168.1.20"
    assert client_ip(None) is None


@pytest.mark.timeout(300)
def test_a_visitor_cannot_pick_their_address_or_frame_another(app_url, tmp_path, on_a_space, monkeypatch):
    """On a Space with a per-address cap of 2: an attacker whose every request names a different address, and the
    victim's, in its own X-Forwarded-For, is still one address (the one the proxy appended): the third of its jobs
    is refused for that address, and the victim, whose address the attacker named, is not refused."""
    from gradio_client import Client, handle_file

    monkeypatch.setenv("PLAYGROUND_MAX_QUEUED_PER_IP", "2")
    png = _digit_png(tmp_path)
    claims = [VICTIM_IP, "8.8.8.8", f"{VICTIM_IP}, 1.2.3.4"]
    attackers = [Client(app_url, verbose=False, headers=_behind_space_proxy(c, ATTACKER_IP)) for c in claims]
    victim = Client(app_url, verbose=False, headers=_behind_space_proxy(None, VICTIM_IP))
    # Jobs long enough to be in flight while the others join (a job takes a second or more to start at all).
    jobs = [a.submit(model="resnet_digits", target="digits", stage1_epochs=1, stage2_epochs=0, max_steps=8,
                     compare_scratch=False, api_name="/finetune") for a in attackers]
    t0 = time.perf_counter()
    label, *_ = victim.predict(handle_file(png), api_name="/classify")   # while the attacker's jobs are in flight
    took = time.perf_counter() - t0
    outcomes = []
    for j in jobs:
        try:
            j.result(timeout=240)
            outcomes.append("ok")
        except Exception as exc:  # noqa: BLE001 - the refusal arrives as an HTTP 400 whose detail says why
            resp = getattr(exc, "response", None)
            outcomes.append(resp.json().get("detail", "") if resp is not None else str(exc))
    assert label["label"] and took < VICTIM_BOUND_S, took
    assert outcomes.count("ok") == 2, outcomes
    assert sum("Your address already has 2 requests" in o for o in outcomes) == 1, outcomes


# ------------------------------------------------------------------ 2. pictures that cost more than their pixels

def tiff_page_chain(pages: int) -> bytes:
    """A little-endian TIFF of `pages` one-pixel pages, each IFD pointing at the next (Pillow's n_frames walks the
    chain in time quadratic in its length). Written by hand: Pillow's own writer takes minutes for 20,000 pages."""
    import struct

    entries = 7
    ifd_size = 2 + entries * 12 + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for k in range(pages):
        start = len(out)
        pixel = start + ifd_size
        nxt = pixel + 2 if k + 1 < pages else 0          # one pixel byte, one pad byte, then the next page
        out += struct.pack("<H", entries)
        for tag, typ, val in ((256, 3, 1), (257, 3, 1), (258, 3, 8), (262, 3, 1), (273, 4, pixel), (278, 3, 1),
                              (279, 4, 1)):
            out += struct.pack("<HHII", tag, typ, 1, val) if typ == 4 else struct.pack("<HHIHH", tag, typ, 1, val, 0)
        out += struct.pack("<I", nxt) + b"\x80\x00"
    return bytes(out)


def png_of_empty_chunks(n: int) -> bytes:
    """A 1x1 PNG with n empty private chunks before its pixels (Pillow parses each one in Python)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"abCd", b"") * n + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def _small(fmt: str, **kw) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buf, format=fmt, **kw)
    return buf.getvalue()


def hostile_pictures() -> dict[str, bytes]:
    """One picture per structural attack, each a few MB at most, each within the upload caps."""
    jpeg, gif = _small("JPEG"), _small("GIF")
    i = gif.index(b",")
    return {
        "tiff-chain": tiff_page_chain(20_000),                                  # ~2 MB
        "png-chunks": png_of_empty_chunks(300_000),                             # 3.6 MB
        "jpeg-markers": jpeg[:2] + b"\xff\xfe\x00\x02" * 600_000 + jpeg[2:],   # 2.4 MB of empty comments
        "gif-comments": gif[:i] + b"!\xfe\x00" * 600_000 + gif[i:],             # 1.8 MB: quadratic in Pillow
        "gif-subblocks": gif[:i] + b"!\xfe" + b"\x01x" * 600_000 + b"\x00" + gif[i:],
        "bmp-rle": _small("BMP")[:30] + b"\x01\x00\x00\x00" + _small("BMP")[34:],
    }


@pytest.mark.parametrize("name", list(hostile_pictures()))
def test_hostile_picture_structures_are_refused_quickly(name):
    """Through zoo.images (every tab and the zip decoder) and through plain Image.open (what Gradio calls on the
    sketchpad's layers and pasted images): a clear refusal, before Pillow's per-piece loops run."""
    from PIL import Image

    from zoo.images import ImageInputError, open_image

    data = hostile_pictures()[name]
    t0 = time.thread_time()        # this thread's CPU time: what the check costs, whatever else the machine runs
    with pytest.raises(ImageInputError, match="refused before decoding|not an image this app reads|run-length"):
        open_image(data)
    import io
    with pytest.raises((ImageInputError, Image.UnidentifiedImageError)):
        Image.open(io.BytesIO(data)).load()
    assert time.thread_time() - t0 < 2.0           # unbounded: 2-60 s of CPU each; bounded: ~0.01 s


def test_pillow_is_bounded_process_wide():
    """After zoo.images is imported: only the allowed formats, the pixel cap at MAX_PIXELS, real pictures open."""
    import io

    from PIL import Image

    import zoo.images as zi

    assert set(Image.ID) == set(zi.ALLOWED_FORMATS)
    bomb = io.BytesIO()
    Image.new("1", (7000, 7000)).save(bomb, format="PNG")          # 49 MP of zeros, a few KB
    with pytest.raises(Image.DecompressionBombError):
        Image.open(bomb)
    for fmt, kw in [("PNG", {}), ("JPEG", {"progressive": True}), ("GIF", {}), ("WEBP", {}), ("BMP", {})]:
        assert zi.open_image(_small(fmt, **kw)).size == (8, 8), fmt
        assert zi.probe(_small(fmt, **kw)) == (fmt, 8, 8)
    frames = [Image.new("L", (8, 8), v) for v in (10, 200, 90)]
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:])
    assert zi.open_image(buf.getvalue()).getpixel((4, 4))[0] < 50   # an animation: its first frame


def _png_file(tmp_path, data: bytes, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.timeout(240)
def test_hostile_pictures_through_the_app_and_the_victim_answers(app_url, app_demo, tmp_path):
    """An attacker sends each hostile picture to /classify (an upload) and as a sketchpad's blob (Gradio decodes
    those itself), a few at once; each is refused, and a victim's /classify answers meanwhile."""
    from gradio_client import Client, handle_file

    png = _digit_png(tmp_path)
    pictures = hostile_pictures()
    attacker = Client(app_url, verbose=False)
    blob_id = uuid.uuid4().hex
    sketch = next(b for b in app_demo.blocks.values() if type(b).__name__ == "Sketchpad")

    def upload_attack(name):
        try:
            attacker.predict(handle_file(_png_file(tmp_path, pictures[name], f"{name}.png")), api_name="/classify")
            return "ran"
        except Exception as exc:  # noqa: BLE001 - the refusal arrives as the app's error message
            return str(exc)

    def blob_attack(name):
        files = {"file": (f"{name}.png", pictures[name], "image/png")}
        data = {"session_hash": attacker.session_hash, "component_id": str(sketch._id), "fn_name": "accept_blobs",
                "id": blob_id, "type": "layer", "index": "0"}
        r = httpx.post(f"{app_url}/gradio_api/component_server", data=data, files=files, timeout=60)
        return r.status_code

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(4) as pool:
        uploads = list(pool.map(upload_attack, pictures))
        blobs = list(pool.map(blob_attack, pictures))
        took = _victim_classify(app_url, png)
    assert all("refused before decoding" in u or "not an image this app reads" in u or "run-length" in u
               for u in uploads), uploads
    assert all(code == 400 for code in blobs), blobs
    assert took < VICTIM_BOUND_S and time.perf_counter() - t0 < 120, took


def _blob(app_url, sketch, session, blob_id, data: bytes, kind="layer", index="0"):
    files = {"file": ("layer.png", data, "image/png")}
    form = {"session_hash": session, "component_id": str(sketch._id), "fn_name": "accept_blobs", "id": blob_id,
            "type": kind, "index": index}
    return httpx.post(f"{app_url}/gradio_api/component_server", data=form, files=files, timeout=60)


@pytest.mark.timeout(240)
def test_sketchpad_blobs_are_bounded(app_url, app_demo, tmp_path):
    """/component_server's accept_blobs (the sketchpad's upload, outside the queue): a layer index of a billion
    (Gradio grew a list to it), a picture larger than any sketch, and a flood of sketches no event ever claims are
    refused or dropped; a real sketch through the same route still classifies."""
    import io

    import numpy as np
    from PIL import Image

    from ui.admission import MAX_PENDING_SKETCH_BYTES

    sketch = next(b for b in app_demo.blocks.values() if type(b).__name__ == "Sketchpad")
    session = _session()
    small = _small("PNG")
    assert _blob(app_url, sketch, session, "x", small, index="1000000000").status_code == 400
    assert _blob(app_url, sketch, session, "x", small, kind="other").status_code == 400
    big = io.BytesIO()
    Image.new("L", (3000, 3000)).save(big, format="PNG")                    # 9 MP of zeros: a few KB
    r = _blob(app_url, sketch, session, "x", big.getvalue())
    assert r.status_code == 400 and "larger than" in r.json()["detail"]
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1400, 1400, 3), dtype=np.uint8)).save(noise, "PNG")
    flood = noise.getvalue()                                                 # ~6 MB each
    for k in range(3 * MAX_PENDING_SKETCH_BYTES // len(flood)):
        assert _blob(app_url, sketch, session, f"flood-{k}", flood).status_code == 200
    held = sum(len(x or b"") for b in sketch.blob_storage.values() for x in [b.background, b.composite, *b.layers])
    assert held <= MAX_PENDING_SKETCH_BYTES + len(flood)
    # A drawn digit, sent the way the browser sends it (blobs, then the event naming their id), still classifies.
    digit = Image.open(_digit_png(tmp_path)).convert("L").resize((400, 400))
    rgba = Image.merge("RGBA", [Image.new("L", digit.size, 0)] * 3 + [digit])   # black ink on a transparent canvas
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    for kind, index in (("composite", "null"), ("layer", "0")):
        assert _blob(app_url, sketch, session, "mine", buf.getvalue(), kind=kind, index=index).status_code == 200
    fn = next(i for i, f in app_demo.fns.items() if f.name == "classify_sketch" and f.api_name == "classify_sketch")
    out = queue_api.call(app_url, fn, [{"id": "mine"}, "resnet_digits", 5], session, timeout=60)
    assert out["success"], out
    # The same event with uploaded files instead of blobs: a hundred layers (each decoded by Gradio) are refused.
    f = _upload(app_url, _digit_png(tmp_path))
    out = queue_api.call(app_url, fn, [{"background": None, "layers": [f] * 100, "composite": f}, "resnet_digits",
                                       5], session, timeout=60)
    assert not out["success"] and "at most" in (out["output"].get("error") or ""), out


# ------------------------------------------------------------------ 11. secrets, temp folders, server paths

CANARY = "hf_CANARYserverOwnerToken000000000"


def test_worker_env_is_an_allow_list(monkeypatch, tmp_path):
    from jobs.runners import worker_env

    monkeypatch.setenv("PLAYGROUND_TEMP_DIR", str(tmp_path / "capped"))
    base = {"PATH": "/usr/bin", "HOME": "/home/x", "LANG": "C.UTF-8", "LC_ALL": "C", "HF_TOKEN": CANARY,
            "HUGGING_FACE_HUB_TOKEN": CANARY, "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_TEMP_DIR": "/elsewhere",
            "OAUTH_CLIENT_SECRET": "s3cret", "AWS_SECRET_ACCESS_KEY": "k", "PLAYGROUND_JOB_WORKERS": "1",
            "PLAYGROUND_HUB_TOKEN": CANARY, "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1", "HF_HOME": "/hf",
            "CUDA_VISIBLE_DEVICES": "0", "PYTHONPATH": "/extra"}
    env = worker_env(3, 10, base=base)
    assert CANARY not in env.values() and "s3cret" not in env.values()
    assert not [k for k in env if k.startswith(("GRADIO_", "OAUTH_", "AWS_"))]
    for k in ("PATH", "HOME", "LANG", "LC_ALL", "PLAYGROUND_JOB_WORKERS", "OMP_NUM_THREADS", "HF_HUB_OFFLINE",
              "HF_HOME", "CUDA_VISIBLE_DEVICES"):
        assert env[k] == base[k], k
    assert env["PLAYGROUND_TEMP_DIR"] == str(tmp_path / "capped") and env["HF_HUB_DISABLE_IMPLICIT_TOKEN"] == "1"
    assert env["PYTHONPATH"].endswith("/extra") and env["PLAYGROUND_JOB_THREADS"] == "3"


@pytest.mark.app   # starts the job worker process
@pytest.mark.timeout(300)
def test_the_job_worker_holds_no_server_secret(monkeypatch, tmp_path):
    """A real worker, started by a server whose environment holds the owner's token: the job runs, and the
    worker's own environment (/proc/<pid>/environ) holds neither the token nor any GRADIO_* setting."""
    import os

    from training.finetuning.finetune_config import FinetuneConfig
    from jobs.runners import WorkerRunner

    if not os.path.exists("/proc/self/environ"):
        pytest.skip("reads another process's environment through /proc (Linux)")
    monkeypatch.setenv("HF_TOKEN", CANARY)
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("OAUTH_CLIENT_SECRET", "s3cret")
    runner = WorkerRunner(threads=1)
    try:
        job_dir = tmp_path / "job"
        job_dir.mkdir()
        params = {"config": FinetuneConfig(max_steps=1, stage1_epochs=1, stage2_epochs=0).to_dict(),
                  "compare_scratch": False}
        result = runner.run("env-test", "finetune", params, str(job_dir), lambda ev: None, lambda: False)
        assert result["test_acc"] >= 0
        with open(f"/proc/{runner.pid}/environ", "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    finally:
        runner.close()
    assert CANARY.encode() not in b"".join(env.values()) and b"s3cret" not in b"".join(env.values())
    assert not [k for k in env if k.startswith((b"GRADIO_", b"OAUTH_")) or k == b"HF_TOKEN"]
    assert env[b"HF_HUB_DISABLE_IMPLICIT_TOKEN"] == b"1"


def _zip_of_pngs(path) -> str:
    import io
    import zipfile

    import numpy as np
    from PIL import Image

    with zipfile.ZipFile(path, "w") as zf:
        for cls, v in (("cats", 200), ("dogs", 30)):
            for i in range(3):
                buf = io.BytesIO()
                Image.fromarray(np.full((12, 12), v, np.uint8)).save(buf, format="PNG")
                zf.writestr(f"{cls}/{i}.png", buf.getvalue())
    return str(path)


def test_zip_extraction_uses_the_capped_temp_folder(monkeypatch, tmp_path):
    """Never the system temp: under the temp root, and inside an upload's own folder (which a job protects)."""
    import tempfile

    import torchvision.transforms.v2.functional  # noqa: F401 - zipdata imports it on first use, and its import
    # makes torch's own compile cache folder in the system temp (torchinductor_<user>): not ours to check here

    from training.data import zipdata

    capped, system = tmp_path / "capped", tmp_path / "system-tmp"
    system.mkdir()
    monkeypatch.setenv("PLAYGROUND_TEMP_DIR", str(capped))
    monkeypatch.setattr(tempfile, "tempdir", str(system))
    seen = []
    real = zipdata.extract_zip_safely
    monkeypatch.setattr(zipdata, "extract_zip_safely", lambda z, dest, *a: seen.append(dest) or real(z, dest, *a))
    elsewhere = _zip_of_pngs(tmp_path / "data.zip")                       # a zip outside the capped folders
    upload_dir = capped / ("ab" * 32)                                     # what a Gradio upload looks like
    upload_dir.mkdir(parents=True)
    upload = _zip_of_pngs(upload_dir / "my-pets.zip")
    for z in (elsewhere, upload):
        split = zipdata.load_zip_dataset(z, size=(12, 12))
        assert split.classes == ("cats", "dogs")
    assert os_path_parent(seen[0]) == str(capped.resolve()) and os_path_parent(seen[1]) == str(upload_dir.resolve())
    assert list(system.iterdir()) == []
    assert [p.name for p in upload_dir.iterdir()] == ["my-pets.zip"]     # extracted files removed when done


def os_path_parent(p: str) -> str:
    from pathlib import Path

    return str(Path(p).resolve().parent)


def test_messages_name_the_visitors_file_not_the_servers_path(tmp_path):
    """An unreadable upload's message names the visitor's file (or nothing), never the folder it sits in."""
    from training.checkpoint import CheckpointError, load_checkpoint
    from training.data.zipdata import ZipRejected, load_zip_dataset
    from zoo.hub import WeightsError, load_safetensors

    secret_dir = tmp_path / "srv-private-folder"
    secret_dir.mkdir()
    unreadable = secret_dir / "my-model.safetensors"
    unreadable.mkdir()                                   # a folder where a file should be: open() fails
    for call, exc in [(lambda: load_safetensors(str(unreadable)), WeightsError),
                      (lambda: load_checkpoint(str(unreadable)), CheckpointError),
                      (lambda: load_zip_dataset(str(secret_dir / "pets.zip")), ZipRejected)]:
        with pytest.raises(exc) as info:
            call()
        assert "srv-private-folder" not in str(info.value) and str(tmp_path) not in str(info.value), info.value
    bad = secret_dir / "holiday.png"
    bad.write_bytes(b"II*\x00" + b"\x00" * 64)
    zip_path = secret_dir / "pets.zip"
    import zipfile
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.write(bad, "cats/holiday.tif")
        zf.write(bad, "dogs/holiday.tif")
    with pytest.raises(ZipRejected, match=r"cats/holiday\.tif") as info:
        load_zip_dataset(str(zip_path))
    assert "srv-private-folder" not in str(info.value)


def test_public_repos_are_the_front_matters_and_the_catalogues():
    import re

    from tests.conftest import ROOT
    from zoo import list_models
    from zoo.catalog import ALEXNET_REPO, DIGITS_REPO
    from zoo.hub import PUBLIC_REPOS

    front = (ROOT / "README.md").read_text().split("---")[1]
    listed = set(re.findall(r"^\s+-\s+([\w.-]+/[\w.-]+)", front, re.M))
    assert {"timm/resnet18.tv_in1k", "timm/vgg16.tv_in1k"} <= listed and listed <= PUBLIC_REPOS
    assert {DIGITS_REPO, ALEXNET_REPO} <= PUBLIC_REPOS                  # the defaults (no PLAYGROUND_* repo set)
    from zoo import get_spec
    assert {get_spec(n).weights.repo_id for n in list_models()} <= PUBLIC_REPOS


def test_public_weights_are_downloaded_without_the_servers_token(fake_hub, monkeypatch):
    """The first download of an ImageNet model sends no Authorization header although HF_TOKEN holds the owner's
    token; a repo the operator configured instead still gets it (it may be private)."""
    import dataclasses

    from safetensors.torch import save

    from zoo import get_spec
    from zoo.hub import weights_path

    monkeypatch.setenv("HF_TOKEN", CANARY)
    blob = save({"w": __import__("torch").zeros(2)})
    spec = get_spec("resnet18")
    fake_hub.add_file(spec.weights.repo_id, spec.weights.filename, blob)
    assert weights_path(spec).endswith("model.safetensors")
    assert fake_hub.auth and all(a is None for a in fake_hub.auth), fake_hub.auth
    operator = dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, repo_id="operator/private-rn18"))
    fake_hub.add_file("operator/private-rn18", spec.weights.filename, blob)
    before = len(fake_hub.auth)
    weights_path(operator)
    assert f"Bearer {CANARY}" in fake_hub.auth[before:]
