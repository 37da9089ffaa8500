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

    from training.data import mnist5k

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
    # warm-up hooks, the reset of a step counter, filling inputs from an example, and events with no Python.
    unqueued = {fn.name for fn in app_demo.fns.values() if not fn.queue}
    assert unqueued <= {"prewarm", "<lambda>", "load_example", None}, unqueued


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

