"""Issue #13's and #23's abuse cases against a real server: `python app.py` in a subprocess on 127.0.0.1, an
attacker and a victim (separate gradio_client sessions), the server's own Hub token as a canary.

    python -m bench.bench_abuse [--only publish sandbox flood zip augment header resume temp memory
                                       rest pictures xff secrets restarts]

For each case: what the attacker got (message or a bounded run) and how long it took, and meanwhile the victim's
/classify and one-line sandbox program. Then the temp folder after 20 fine-tunes with PLAYGROUND_TEMP_MAX_MB=50,
and the growth of the server (with its worker processes) after 6 visitors each did 3 short fine-tunes, GAN
samples and classifications; `restarts`: three sessions looping runaway programs (issue #23 item 8).
Prints JSON; writes bench/results/abuse.json. Every request goes to 127.0.0.1 and
every loop is bounded.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CANARY = "hf_CANARYserverOwnerToken000000000"
RUNAWAY = "x = torch.rand(3000, 3000)\n" + "\n".join(["y = x @ x @ x @ x @ x @ x"] * 40)
TINY_FT = dict(model="resnet_digits", target="digits", stage1_epochs=1, stage2_epochs=1, max_steps=3,
               compare_scratch=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """python app.py on a free port with the given environment; stopped on exit."""

    def __init__(self, env: dict):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **env}

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port)], cwd=ROOT, env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/config", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the app did not start in 180 s")

    def rss_mb(self) -> float:
        """Resident memory of the server and every process under it (sandbox and job workers)."""
        import psutil

        p = psutil.Process(self.proc.pid)
        procs = [p] + p.children(recursive=True)
        total = 0
        for q in procs:
            try:
                total += q.memory_info().rss
            except psutil.Error:
                pass
        return round(total / 2**20, 1)

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def _digit_png(folder: Path) -> str:
    from training.data.datasets import mnist5k

    path = folder / "digit.png"
    Image.fromarray((mnist5k().test_x[3, 0].numpy() * 255).astype(np.uint8)).save(path)
    return str(path)


def _error_text(exc: BaseException) -> str:
    resp = getattr(exc, "response", None)
    if resp is not None:
        try:
            return str(resp.json().get("detail", resp.text))[:300]
        except ValueError:
            return resp.text[:300]
    return str(exc)[:300]


def victim(url: str, digit: str) -> dict:
    """One /classify and one one-line sandbox program from a fresh visitor, timed."""
    from gradio_client import handle_file

    c = _client(url)
    t0 = time.perf_counter()
    label, *_ = c.predict(handle_file(digit), api_name="/classify")
    t1 = time.perf_counter()
    text, *_ = c.predict("print(torch.ones(2) * 3)", api_name="/tensor_eval")
    t2 = time.perf_counter()
    return {"classify_s": round(t1 - t0, 2), "sandbox_one_liner_s": round(t2 - t1, 2),
            "classify_ok": bool(label.get("label")), "sandbox_ok": "tensor([3., 3.])" in text}


def during(url: str, digit: str, attack, lead_s: float = 1.0) -> dict:
    """Run attack() in a thread; lead_s later, the victim's requests; then wait for the attack to end."""
    out: dict = {}

    def run():
        t0 = time.perf_counter()
        try:
            out.update(attack())
        except Exception as exc:  # noqa: BLE001 - the attack's outcome is data here
            out["attacker_error"] = _error_text(exc)
        out["attack_s"] = round(time.perf_counter() - t0, 2)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(lead_s)
    out["victim"] = victim(url, digit)
    t.join(600)
    return out


# ------------------------------------------------------------------------------------------------ the cases

def case_publish(url, digit, hub) -> dict:
    from tests import queue_api

    def attack():
        c = _client(url)
        c.predict(**TINY_FT, api_name="/finetune")
        idx = queue_api.fn_index_by_api_name(url, "publish")
        t0 = time.perf_counter()
        msg = queue_api.call(url, idx, [None, "owner/victim-repo", ""], c.session_hash, timeout=60)
        return {"refused": msg["success"] is False, "message": (msg["output"].get("error") or "")[:300],
                "message_s": round(time.perf_counter() - t0, 2),
                "canary_reached_hub": any(CANARY in (a or "") for a in hub.auth),
                "repo_created": "owner/victim-repo" in hub.repos}

    return during(url, digit, attack)


def case_sandbox(url, digit) -> dict:
    def attack():
        c = _client(url)
        t0 = time.perf_counter()
        jobs = [c.submit(RUNAWAY, api_name="/tensor_eval") for _ in range(5)]
        return {"answers": _timed_results(jobs, t0)}

    return during(url, digit, attack, lead_s=0.5)


def case_restarts(url, digit) -> dict:
    """Issue #23 item 8: three sessions loop runaway programs (each stopped at its limit) while a victim
    classifies and runs one-liners. With whole programs a stopped run kills only its own fork: the template
    stays warm, nothing restarts (the restricted sandbox's worker took ~15 s to come back)."""
    from bench.bench_programs import RUNAWAY as LOOPED
    from bench.bench_programs import under_attack

    return under_attack(url, digit, {"runaway": [LOOPED] * 3}, seconds=40.0)


def _timed_results(jobs, t0) -> list[dict]:
    """Each submitted job's outcome with the moment it arrived (not the moment we got round to reading it)."""
    arrived: dict[int, float] = {}
    for i, j in enumerate(jobs):
        j.add_done_callback(lambda _f, i=i: arrived.setdefault(i, time.perf_counter() - t0))
    out = []
    for i, j in enumerate(jobs):
        try:
            r = j.result(timeout=300)
            first = r[0] if isinstance(r, (list, tuple)) and r else r
            text = first if isinstance(first, str) else ""
            out.append({"ok": True, "text": text[:100] + (" ... " + text[-160:] if len(text) > 100 else "")})
        except Exception as exc:  # noqa: BLE001
            out.append({"ok": False, "message": _error_text(exc)})
    for i, o in enumerate(out):
        o["s"] = round(arrived.get(i, time.perf_counter() - t0), 2)
    return out


def case_flood(url, digit) -> dict:
    """One session fires 40 interactive requests at once (augmentation previews): past its share of the queue
    they are refused at once with a reason, and the victim's /classify still gets in."""
    def attack():
        c = _client(url)
        t0 = time.perf_counter()
        jobs = [c.submit(n_draws=16, seed=i, api_name="/augment") for i in range(40)]
        outcomes = _timed_results(jobs, t0)
        refused = [o for o in outcomes if not o["ok"]]
        return {"sent": len(jobs), "accepted": len(outcomes) - len(refused), "refused": len(refused),
                "slowest_refusal_s": max((o["s"] for o in refused), default=None),
                "first_refusal": refused[0] if refused else None}

    return during(url, digit, attack, lead_s=0.5)


def case_jobs(url, digit) -> dict:
    """One session submits 6 fine-tunes at once: one runs, the rest are refused at once (one job per visitor)."""
    def attack():
        c = _client(url)
        t0 = time.perf_counter()
        jobs = [c.submit(**{**TINY_FT, "max_steps": 30}, api_name="/finetune") for _ in range(6)]
        outcomes = _timed_results(jobs, t0)
        refused = [o for o in outcomes if not o["ok"]]
        return {"accepted": len(outcomes) - len(refused), "refused": len(refused),
                "slowest_refusal_s": max((o["s"] for o in refused), default=None),
                "first_refusal": refused[0] if refused else None}

    return during(url, digit, attack, lead_s=0.5)


def _huge_png_zip(folder: Path, n: int = 30, side: int = 6000) -> str:
    png = folder / "huge.png"
    Image.fromarray(np.zeros((side, side), np.uint8)).save(png, optimize=True)
    path = folder / "huge-pngs.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            zf.write(png, f"{'ab'[i % 2]}/img{i}.png")
    return str(path)


def case_zip(url, digit, folder) -> dict:
    from gradio_client import handle_file

    zpath = _huge_png_zip(folder)

    def attack():
        c = _client(url)
        t0 = time.perf_counter()
        try:
            c.predict(**{**TINY_FT, "target": "zip"}, zip_file=handle_file(zpath), api_name="/finetune")
            return {"refused": False, "zip_mb": round(os.path.getsize(zpath) / 2**20, 2)}
        except Exception as exc:  # noqa: BLE001
            return {"refused": True, "message": _error_text(exc), "message_s": round(time.perf_counter() - t0, 2),
                    "zip_mb": round(os.path.getsize(zpath) / 2**20, 2)}

    return during(url, digit, attack, lead_s=0.3)


def case_augment(url, digit, folder, server) -> dict:
    from gradio_client import handle_file

    big = folder / "flat-36mp.png"
    Image.fromarray(np.full((6000, 6000, 3), 128, np.uint8)).save(big)
    before = server.rss_mb()
    peak = {"mb": before}
    stop = threading.Event()

    def watch():
        while not stop.wait(0.2):
            peak["mb"] = max(peak["mb"], server.rss_mb())

    w = threading.Thread(target=watch, daemon=True)
    w.start()

    def attack():
        c = _client(url)
        t0 = time.perf_counter()
        pics, summary, _ = c.predict(handle_file(str(big)), resize=0, crop_size=0, crop_padding=0, n_draws=16,
                                     api_name="/augment")
        return {"draws": len(pics), "s": round(time.perf_counter() - t0, 2), "summary": summary[:200]}

    out = during(url, digit, attack, lead_s=1.0)
    stop.set()
    w.join()
    out.update(rss_before_mb=before, rss_peak_mb=peak["mb"], rss_after_mb=server.rss_mb())
    return out


def _million_tensors(folder: Path) -> str:
    import struct

    header = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(1_000_000)}
    raw = json.dumps(header).encode()
    path = folder / "million.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return str(path)


def case_header(url, digit, folder) -> dict:
    from gradio_client import handle_file

    path = _million_tensors(folder)

    def attack():
        c = _client(url)
        t0 = time.perf_counter()
        try:
            c.predict("resnet_digits", "trained -> uploaded .safetensors", 0, handle_file(path), "",
                      api_name="/compare_checkpoints")
            return {"refused": False}
        except Exception as exc:  # noqa: BLE001
            return {"refused": True, "message": _error_text(exc), "message_s": round(time.perf_counter() - t0, 2)}

    return during(url, digit, attack, lead_s=0.2)


def _greedy_checkpoint(src: str, folder: Path) -> str:
    """A real resumable checkpoint whose config asks for 200 + 200 epochs at batch size 1."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(src, framework="pt") as f:
        md = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    doc = json.loads(md["json"])
    doc["meta"]["config"].update(stage1_epochs=200, stage2_epochs=200, batch_size=1, max_steps=None)
    md["json"] = json.dumps(doc)
    out = folder / "greedy-checkpoint.safetensors"
    save_file(tensors, str(out), metadata=md)
    return str(out)


def case_resume(url, digit, folder) -> dict:
    from gradio_client import handle_file

    c = _client(url)
    result = c.predict(**TINY_FT, api_name="/finetune")
    files = [f for f in result if isinstance(f, list)]
    ckpt = next(p for group in files for p in group if "checkpoint" in os.path.basename(str(p)))
    greedy = _greedy_checkpoint(ckpt, folder)

    def attack():
        a = _client(url)
        t0 = time.perf_counter()
        try:
            a.predict(handle_file(greedy), None, api_name="/resume")
            return {"refused": False, "s": round(time.perf_counter() - t0, 2)}
        except Exception as exc:  # noqa: BLE001
            return {"refused": True, "message": _error_text(exc), "message_s": round(time.perf_counter() - t0, 2)}

    return during(url, digit, attack, lead_s=0.2)


def _tree_mb(root: Path) -> float:
    total = 0
    for dirpath, _d, files in os.walk(root):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                pass
    return round(total / 2**20, 2)


def case_temp(url, temp_root: Path, runs: int = 20) -> dict:
    c = _client(url)
    sizes = []
    t0 = time.perf_counter()
    for i in range(runs):
        c.predict(**{**TINY_FT, "seed": i}, api_name="/finetune")
        sizes.append(_tree_mb(temp_root))
    return {"runs": runs, "temp_mb_after_each": sizes, "max_mb": max(sizes), "s": round(time.perf_counter() - t0, 1)}


def _visitor_round(url, digit, n_ft: int = 3) -> None:
    from gradio_client import handle_file

    c = _client(url)
    for i in range(n_ft):
        c.predict(**{**TINY_FT, "seed": i}, api_name="/finetune")
        c.predict(i, 16, api_name="/gan_sample")
        c.predict(handle_file(digit), api_name="/classify")


def case_memory(url, digit, server, visitors: int = 6) -> dict:
    _visitor_round(url, digit, n_ft=1)                      # warm-up: models, job worker, sandbox pool
    victim(url, digit)
    time.sleep(2)
    before = server.rss_mb()
    threads = [threading.Thread(target=_visitor_round, args=(url, digit)) for _ in range(visitors)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(900)
    time.sleep(2)
    after = server.rss_mb()
    return {"visitors": visitors, "rss_before_mb": before, "rss_after_mb": after,
            "growth_mb": round(after - before, 1), "s": round(time.perf_counter() - t0, 1)}


# ------------------------------------------------------------------------------------------------ issue #23

def case_rest(url, digit, folder) -> dict:
    """Item 1: a dozen direct POSTs at once to Gradio's REST routes (/run/<name>, /run/predict and /api/predict by
    fn_index) with a queued event, a 36-megapixel /augment, which used to run at once outside the queue's limit
    and every per-visitor cap."""
    from tests import queue_api

    big = folder / "flat-36mp.png"
    if not big.exists():
        Image.fromarray(np.full((6000, 6000, 3), 128, np.uint8)).save(big)

    def attack():
        up = httpx.post(f"{url}/gradio_api/upload", files={"files": open(big, "rb")}, timeout=60).json()[0]
        info = httpx.get(f"{url}/gradio_api/info", timeout=30).json()["named_endpoints"]["/augment"]
        given = {"resize": 0, "crop_size": 0, "crop_padding": 0, "n_draws": 16}
        data = [{"path": up, "meta": {"_type": "gradio.FileData"}} if i == 0 else
                given.get(p["parameter_name"], p.get("parameter_default")) for i, p in enumerate(info["parameters"])]
        idx = queue_api.fn_index_by_api_name(url, "augment")
        routes = [("run/augment", {}), ("run/predict", {"fn_index": idx}), ("api/predict", {"fn_index": idx})] * 4
        codes: list = [None] * len(routes)
        t0 = time.perf_counter()

        def post(i):
            route, extra = routes[i]
            try:
                codes[i] = httpx.post(f"{url}/gradio_api/{route}", json={"data": data, **extra},
                                      timeout=300).status_code
            except httpx.HTTPError as exc:
                codes[i] = type(exc).__name__

        threads = [threading.Thread(target=post, args=(i,)) for i in range(len(routes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        return {"sent": len(routes), "status_codes": sorted(set(map(str, codes))),
                "all_s": round(time.perf_counter() - t0, 2)}

    return during(url, digit, attack, lead_s=1.0)


def case_pictures(url, digit, folder) -> dict:
    """Item 2: pictures whose structure costs Pillow more than their pixels (a TIFF of 20,000 one-pixel pages,
    a PNG of 300,000 empty chunks, a JPEG of 600,000 empty markers, a GIF of 600,000 empty comments), each sent
    to /classify and as a sketchpad blob (Gradio decodes those itself), four at a time."""
    from gradio_client import handle_file

    from tests.test_abuse_routes import hostile_pictures

    pictures = hostile_pictures()
    for name, data in pictures.items():
        (folder / f"{name}.png").write_bytes(data)
    cfg = httpx.get(f"{url}/config", timeout=10).json()
    sketch = next(c["id"] for c in cfg["components"] if c.get("type") == "imageeditor")

    def attack():
        c = _client(url)
        out: dict = {}

        def one(name):
            t0 = time.perf_counter()
            try:
                c.predict(handle_file(str(folder / f"{name}.png")), api_name="/classify")
                upload = "ran"
            except Exception as exc:  # noqa: BLE001
                upload = _error_text(exc)[:90]
            t1 = time.perf_counter()
            r = httpx.post(f"{url}/gradio_api/component_server", timeout=120, files={"file": (
                "layer.png", pictures[name], "image/png")}, data={
                "session_hash": c.session_hash, "component_id": str(sketch), "fn_name": "accept_blobs",
                "id": name, "type": "layer", "index": "0"})
            out[name] = {"classify": upload, "classify_s": round(t1 - t0, 2), "sketch_blob_status": r.status_code,
                         "sketch_blob_s": round(time.perf_counter() - t1, 2)}

        threads = [threading.Thread(target=one, args=(n,)) for n in pictures]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        return {"pictures": out, "bytes": {n: len(d) for n, d in pictures.items()}}

    return during(url, digit, attack, lead_s=0.5)


def case_xff(digit, env: dict) -> dict:
    """Item 10, on a server that is a Space to Gradio and to the app (SYSTEM=spaces, SPACE_ID; per-address cap 4):
    an attacker's requests each name another address in their own X-Forwarded-For (the victim's among them) ahead
    of the one a Space's proxy appends (its real one); the victim's requests carry only their own."""
    from gradio_client import Client

    own_temp = env["PLAYGROUND_TEMP_DIR"] + "-space"            # not the other server's pruned folder
    space_env = {**env, "SYSTEM": "spaces", "SPACE_ID": "bench/abuse", "PLAYGROUND_MAX_QUEUED_PER_IP": "4",
                 "PLAYGROUND_TEMP_DIR": own_temp, "GRADIO_TEMP_DIR": own_temp}
    attacker_ip, victim_ip = "198.51.100.7", "203.0.113.5"
    with Server(space_env) as server:
        url = server.url
        warm = Client(url, verbose=False, headers={"x-forwarded-for": victim_ip})
        warm.predict("torch.ones(1)", api_name="/tensor_eval")

        def attack():
            claims = [victim_ip] + [f"10.0.{k}.1, 8.8.{k}.8" for k in range(7)]
            clients = [Client(url, verbose=False, headers={"x-forwarded-for": f"{claim}, {attacker_ip}"})
                       for claim in claims]
            t0 = time.perf_counter()
            jobs = [c.submit(n_draws=16, seed=i, api_name="/augment") for i, c in enumerate(clients)]
            outcomes = _timed_results(jobs, t0)
            refused = [o for o in outcomes if not o["ok"]]
            return {"sent": len(jobs), "accepted": len(jobs) - len(refused), "refused": len(refused),
                    "first_refusal": refused[0] if refused else None}

        def victim_request():
            c = Client(url, verbose=False, headers={"x-forwarded-for": victim_ip})
            from gradio_client import handle_file

            t0 = time.perf_counter()
            try:
                label, *_ = c.predict(handle_file(digit), api_name="/classify")
                ok = bool(label.get("label"))
            except Exception as exc:  # noqa: BLE001
                ok = _error_text(exc)
            t1 = time.perf_counter()
            try:
                text, *_ = c.predict("print(torch.ones(2) * 3)", api_name="/tensor_eval")
                sandbox_ok = "tensor([3., 3.])" in text
            except Exception as exc:  # noqa: BLE001
                sandbox_ok = _error_text(exc)
            return {"classify_s": round(t1 - t0, 2), "sandbox_one_liner_s": round(time.perf_counter() - t1, 2),
                    "classify_ok": ok, "sandbox_ok": sandbox_ok}

        out: dict = {}
        t = threading.Thread(target=lambda: out.update(attack()), daemon=True)
        t.start()
        time.sleep(0.5)
        out["victim"] = victim_request()
        t.join(300)
        return out


def case_secrets(url, digit, hub, server) -> dict:
    """Item 11: the server's HF_TOKEN is a canary. A fine-tune starts the job worker (its environment is read from
    /proc), and a photo classified with ResNet-18 makes the server's first download of a public model."""
    import psutil
    import torchvision
    from gradio_client import handle_file
    from safetensors.torch import save

    state = torchvision.models.resnet18(weights=None).state_dict()
    hub.add_file("timm/resnet18.tv_in1k", "model.safetensors", save({k: v.contiguous() for k, v in state.items()}))
    photo = Path(digit).with_name("photo.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)).save(photo)

    def attack():
        c = _client(url)
        before = len(hub.auth)
        t0 = time.perf_counter()
        c.predict(**TINY_FT, api_name="/finetune")
        finetune_s = time.perf_counter() - t0
        try:
            c.predict(handle_file(str(photo)), "resnet18", 5, api_name="/classify")
            download = "ok"
        except Exception as exc:  # noqa: BLE001
            download = _error_text(exc)[:200]
        envs = []
        for child in psutil.Process(server.proc.pid).children(recursive=True):
            try:
                envs.append(child.environ())
            except psutil.Error:
                pass
        return {"finetune_s": round(finetune_s, 2), "children_read": len(envs),
                "canary_in_a_child_env": any(CANARY in v for e in envs for v in e.values()),
                "gradio_vars_in_a_child_env": sorted({k for e in envs for k in e if k.startswith("GRADIO_")}),
                "public_download": download, "hub_requests": len(hub.auth) - before,
                "canary_reached_hub": any(CANARY in (a or "") for a in hub.auth[before:])}

    return during(url, digit, attack, lead_s=1.0)


CASES = ["publish", "sandbox", "flood", "jobs", "zip", "augment", "header", "resume", "temp", "memory",
         "rest", "pictures", "xff", "secrets", "restarts"]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=CASES, default=CASES)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "abuse.json"))
    args = ap.parse_args(argv)
    from tests.fakehub import FakeHub

    out: dict = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp, FakeHub() as hub:
        folder = Path(tmp)
        temp_root = folder / "server-temp"
        env = {"PLAYGROUND_TEMP_DIR": str(temp_root), "PLAYGROUND_TEMP_MAX_MB": "50", "HF_TOKEN": CANARY,
               "HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0", "HF_HOME": str(folder / "hf-home"),
               "GRADIO_TEMP_DIR": str(temp_root)}
        digit = _digit_png(folder)
        with Server(env) as server:
            out["rss_idle_mb"] = server.rss_mb()
            # Warm-up, as a live Space is: the sandbox pool and the models (cold starts are not what is measured).
            warm = [victim(server.url, digit) for _ in range(2)]
            out["victim_quiet"] = warm[-1]
            for name in args.only:
                t0 = time.perf_counter()
                if name == "publish":
                    out[name] = case_publish(server.url, digit, hub)
                elif name == "sandbox":
                    out[name] = case_sandbox(server.url, digit)
                elif name == "flood":
                    out[name] = case_flood(server.url, digit)
                elif name == "jobs":
                    out[name] = case_jobs(server.url, digit)
                elif name == "zip":
                    out[name] = case_zip(server.url, digit, folder)
                elif name == "augment":
                    out[name] = case_augment(server.url, digit, folder, server)
                elif name == "header":
                    out[name] = case_header(server.url, digit, folder)
                elif name == "resume":
                    out[name] = case_resume(server.url, digit, folder)
                elif name == "temp":
                    out[name] = case_temp(server.url, temp_root)
                elif name == "memory":
                    out[name] = case_memory(server.url, digit, server)
                elif name == "rest":
                    out[name] = case_rest(server.url, digit, folder)
                elif name == "pictures":
                    out[name] = case_pictures(server.url, digit, folder)
                elif name == "xff":
                    out[name] = case_xff(digit, env)
                elif name == "secrets":
                    out[name] = case_secrets(server.url, digit, hub, server)
                elif name == "restarts":
                    out[name] = case_restarts(server.url, digit)
                out[name]["case_s"] = round(time.perf_counter() - t0, 1)
                print(name, json.dumps(out[name])[:400], file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
