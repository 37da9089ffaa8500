"""What a visitor leaves on the server is bounded (issue #23 items 3-7 and 9, #26 item 8): sessions, unread results,
temp files, the job queue's turns and Look inside's summary. Attacks go through the raw queue API or a second
gradio_client; time bounds are what a loaded 2-core machine always meets."""
from __future__ import annotations

import hashlib

import os
import time
from pathlib import Path

import httpx
import pytest

from tests import queue_api

VICTIM_IP = "203.0.113.5"         # documentation addresses (RFC 5737), as the Space's proxy appends them
ATTACKER_IP = "198.51.100.7"


def _wait(pred, timeout=60.0, every=0.05) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(every)
    return False


@pytest.fixture
def on_a_space(monkeypatch):
    """This process is a Space (zoo.space.on_space), so addresses come from the proxy's X-Forwarded-For."""
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("SPACE_ID", "someone/pytorch-playground")


def _join(url, index, data, session, ip=None) -> httpx.Response:
    body = {"data": data, "fn_index": index, "session_hash": session, "event_data": None, "trigger_id": None}
    headers = {"x-forwarded-for": ip} if ip else {}
    return httpx.post(f"{url}/gradio_api/queue/join", json=body, headers=headers, timeout=30)


def _call(url, index, data, session, ip=None) -> dict:
    r = _join(url, index, data, session, ip)
    r.raise_for_status()
    return queue_api.results(url, session, timeout=60)[-1]


# ------------------------------------------------------------------ 3. memory per session

def test_a_session_costs_little_and_gradio_internals_are_as_expected(app_demo):
    import tracemalloc

    from ui.sessions import BoundedStateHolder, LeanSessionState

    holder = app_demo.server_app.state_holder
    assert isinstance(holder, BoundedStateHolder) and holder._policy is not None
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states = [holder[f"cost-probe-{i}"] for i in range(20)]
    per_session = (tracemalloc.get_traced_memory()[0] - before) / len(states)
    tracemalloc.stop()
    assert all(isinstance(s, LeanSessionState) for s in states)
    assert per_session < 100_000, per_session          # Gradio's own SessionState: ~800 KB for this page
    # What /deep_link would serialize is still there, made on demand from the session's own components.
    configs = dict(states[0].config_values.items())
    assert len(configs) > 100 and all(c["id"] == k for k, c in configs.items())
    for i in range(20):
        for d in (holder.session_data, holder.owner, holder.time_last_used):
            d.pop(f"cost-probe-{i}", None)


@pytest.mark.timeout(300)
def test_a_flood_of_new_sessions_evicts_its_own_and_is_refused_past_its_rate(app_url, app_demo, on_a_space,
                                                                             monkeypatch):
    """On a Space: the attacker's address opens fresh sessions; the holder stays under its cap, the victim's
    (idle, but from another address) session and its state survive, and past the per-address rate the
    attacker's NEW sessions are refused while its existing one and the victim's keep working."""
    holder = app_demo.server_app.state_holder
    idx = queue_api.fn_index(app_demo, "model_card_ui")
    victim = f"victim-{time.time_ns()}"
    assert _call(app_url, idx, ["resnet_digits"], victim, VICTIM_IP)["success"]
    victim_state = holder.session_data[victim]
    n0 = len(holder.session_data)
    cap = n0 + 10                                  # the sessions other tests left, and ten more
    monkeypatch.setenv("PLAYGROUND_MAX_SESSIONS", str(cap))
    monkeypatch.setenv("PLAYGROUND_NEW_SESSIONS_PER_IP_PER_MIN", "1000")
    flood = [f"flood-{time.time_ns()}-{i}" for i in range(min(n0 + 30, 400))]   # outnumbers every other address
    for sid in flood:
        assert _call(app_url, idx, ["resnet_digits"], sid, ATTACKER_IP)["success"]
        assert len(holder.session_data) <= cap
    assert holder.session_data.get(victim) is victim_state            # the victim's session, state and all
    assert flood[-1] in holder.session_data and flood[0] not in holder.session_data   # the flood evicted its own
    assert _call(app_url, idx, ["resnet_digits"], victim, VICTIM_IP)["success"]

    # The per-address rate of NEW sessions: a fresh bucket of 5 for another attacking address.
    monkeypatch.setenv("PLAYGROUND_NEW_SESSIONS_PER_IP_PER_MIN", "5")
    other = "198.51.100.99"
    codes = [_join(app_url, idx, ["resnet_digits"], f"burst-{time.time_ns()}-{i}", other) for i in range(8)]
    assert [r.status_code for r in codes[:5]] == [200] * 5
    refused = [r for r in codes[5:] if r.status_code == 400]
    assert len(refused) == 3 and all("too many new sessions" in r.json()["detail"] for r in refused)
    assert _call(app_url, idx, ["resnet_digits"], flood[-1], ATTACKER_IP)["success"]   # existing: not refused
    assert _call(app_url, idx, ["resnet_digits"], f"victim2-{time.time_ns()}", VICTIM_IP)["success"]


# ------------------------------------------------------------------ 4. results nobody reads

@pytest.mark.timeout(300)
def test_unread_results_are_bounded_per_session_and_overall(app_url, app_demo, monkeypatch):
    from ui import queue_bounds

    monkeypatch.setenv("PLAYGROUND_MAX_QUEUED_PER_SESSION", "100")    # joins faster than they run
    idx = queue_api.fn_index(app_demo, "model_card_ui")
    queue = app_demo._queue
    ledger = queue._playground_ledger
    lim = queue_bounds.limits()
    sessions = [f"unread-{time.time_ns()}-{k}" for k in range(2)]
    for i in range(20):
        for s in sessions:
            _join(app_url, idx, ["resnet_digits"], s).raise_for_status()
    def _in_flight(queue):
        waiting = [e for g in queue.event_queue_per_concurrency_id.values() for e in g.queue]
        return waiting + [e for job in queue.active_jobs if job for e in job]

    assert _wait(lambda: not any(e.session_hash in sessions for e in _in_flight(queue)), 120)
    time.sleep(0.5)
    for s in sessions:
        q = queue.pending_messages_per_session[s]
        full = [m for m in q._queue if id(m) in ledger.entries]
        assert 0 < len(full) <= lim["results_per_session"] and q.bytes <= lim["bytes_per_session"]
        assert len(q._queue) <= lim["messages_per_session"]
    # Overall: with a 2 kB budget for all sessions, only about the newest result is held anywhere.
    monkeypatch.setenv("PLAYGROUND_UNREAD_MB", str(2000 / (1 << 20)))
    _join(app_url, idx, ["resnet_digits"], sessions[0]).raise_for_status()
    assert _wait(lambda: not any(e.session_hash in sessions for e in _in_flight(queue)), 60)
    assert ledger.bytes <= 2000 + 1000, ledger.bytes
    # Reading later: every event ends (the stream closes), the oldest as the short "dropped" error.
    msgs = queue_api.results(app_url, sessions[1], timeout=60)
    assert len(msgs) == 20
    dropped = [m for m in msgs if not m["success"]]
    assert len(dropped) >= 20 - lim["results_per_session"]
    assert all(queue_bounds.DROPPED in m["output"]["error"] for m in dropped)


def test_an_unread_stream_keeps_a_prefix_of_its_steps_and_its_final_message(monkeypatch):
    """Streamed steps are diffs of each other: past the budget the later ones are dropped (never one in the middle),
    and the final message, which carries full values, always arrives."""
    import asyncio
    from types import SimpleNamespace as NS

    from gradio.server_messages import EstimationMessage, ProcessCompletedMessage, ProcessGeneratingMessage

    from ui import queue_bounds

    monkeypatch.setenv("PLAYGROUND_UNREAD_RESULTS", "2")            # 8 unread steps per event
    ledger = queue_bounds._Ledger(NS(pending_event_ids_session={"s": {"e1", "e2"}}))

    async def run():
        q = queue_bounds._Messages(ledger, "s")
        for i in range(20):
            q.put_nowait(ProcessGeneratingMessage(output={"data": [i]}, success=True, event_id="e1"))
            q.put_nowait(EstimationMessage(rank=i, queue_size=20, event_id="e2"))
        q.put_nowait(ProcessCompletedMessage(output={"data": ["final"]}, success=True, event_id="e1"))
        return [q.get_nowait() for _ in range(q.qsize())]

    msgs = asyncio.run(run())
    steps = [m.output["data"][0] for m in msgs if isinstance(m, ProcessGeneratingMessage)]
    assert steps == list(range(8))                                  # a prefix, in order
    assert isinstance(msgs[-1], ProcessCompletedMessage) and msgs[-1].output["data"] == ["final"]
    assert len(msgs) <= queue_bounds.limits()["messages_per_session"] and ledger.bytes == 0


# ------------------------------------------------------------------ 5, 6, 8. temp files

def _fill(path: Path, n_bytes: int, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * n_bytes)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
        os.utime(path.parent, (mtime, mtime))
    return path


def test_temp_cap_deletes_the_largest_spender_first_and_never_a_queued_jobs_files(monkeypatch, tmp_path):
    from core import tempfiles

    monkeypatch.setenv("PLAYGROUND_TEMP_DIR", str(tmp_path / "root"))
    monkeypatch.setenv("PLAYGROUND_TEMP_MAX_MB", "3")
    monkeypatch.setattr(tempfiles, "_OPERATOR_GRADIO_DIR", None)
    now = time.time()
    victim = ("203.0.113.5", "victim")
    download = Path(tempfiles.run_dir("export", owner=victim)) / "run.zip"      # the victim's fresh download
    _fill(download, 300_000, now - 50)
    job_zip = _fill(tempfiles.gradio_dir() / ("a" * 64) / "data.zip", 400_000, now - 500)   # a queued job's
    tempfiles.claim(job_zip, victim)
    keys = tempfiles.protect([job_zip])
    flood = [_fill(tempfiles.gradio_dir() / f"{i:064x}" / "up.bin", 600_000, now - 400 + i) for i in range(8)]
    for f in flood[:4]:                      # half used by the attacker's own requests, half never used
        tempfiles.claim(f, ("198.51.100.7", f"s{f.parent.name[-1]}"))
    report = tempfiles.prune()
    assert download.exists() and job_zip.exists()
    assert report["cost"] <= 3 << 20 and tempfiles.usage_cost() <= 3 << 20
    assert sum(f.exists() for f in flood) <= 3          # 3 MB: the victim's 0.7 MB and three of the flood
    # Protected means protected: even as the only thing left over the cap, and past the age limit.
    monkeypatch.setenv("PLAYGROUND_TEMP_MAX_MB", "0.1")
    tempfiles.prune(now=now + 7 * 3600)
    assert job_zip.exists() and not download.exists()
    tempfiles.release(keys)
    tempfiles.prune()
    assert not job_zip.exists()


def test_temp_cost_counts_blocks_and_entries(monkeypatch, tmp_path):
    from core import tempfiles

    monkeypatch.setenv("PLAYGROUND_TEMP_DIR", str(tmp_path / "root"))
    monkeypatch.setattr(tempfiles, "_OPERATOR_GRADIO_DIR", None)
    tiny = tempfiles.temp_root() / ("b" * 64)
    tiny.mkdir()
    for i in range(500):                                  # 500 empty uploads: no bytes, but not free
        (tiny / f"{i}.txt").touch()
    assert tempfiles.usage_bytes() == 0
    assert tempfiles.usage_cost() >= 501 * tempfiles.ENTRY_COST
    monkeypatch.setenv("PLAYGROUND_TEMP_MAX_MB", "1")     # 1 MB holds fewer than 256 entries
    tempfiles.prune()
    assert not tiny.exists()


def test_a_result_returned_again_is_not_an_old_file(monkeypatch, tmp_path):
    """Gradio stores a returned file under its content's hash and leaves it as it is when it is there already: the
    same picture handed out today carries the mtime of its first time. Handed out again (claimed as a result),
    it counts from now, so a prune for age or for the cap does not delete it while the page fetches it."""
    import os
    import time

    from core import tempfiles

    monkeypatch.setenv("PLAYGROUND_TEMP_DIR", str(tmp_path / "root"))
    monkeypatch.setattr(tempfiles, "_OPERATOR_GRADIO_DIR", None)
    age = {"max_bytes": 1 << 30, "max_age_s": 10 * 86400}
    monkeypatch.setattr(tempfiles, "limits", lambda: dict(age))
    day_ago = time.time() - 86400
    units = {}
    for name in ("again", "stale"):
        unit = tempfiles.temp_root() / hashlib.sha256(name.encode()).hexdigest()
        unit.mkdir(parents=True)
        (unit / "image.png").write_bytes(b"x" * 100)
        for p in (unit / "image.png", unit):
            os.utime(p, (day_ago, day_ago))
        units[name] = unit
    tempfiles.prune(full=False)                            # both measured (and cached) as a day old
    tempfiles.claim([str(units["again"] / "image.png")], ("203.0.113.9", "s1"), result=True)
    age["max_age_s"] = 3600
    tempfiles.prune(full=False)
    assert (units["again"] / "image.png").exists()        # handed out again just now
    assert not units["stale"].exists()                    # nobody's result for a day: past the age limit


@pytest.mark.app   # builds the app (no server) to have Gradio copy its example files
def test_gradio_example_files_survive_pruning_seven_hours_later(monkeypatch, tmp_path):
    """#26 item 8: gr.Examples copies each example into the temp folder, marked keep-in-cache; pruning with the
    clock 7 hours ahead (past the 6 h age limit) and over the cap keeps every one of them."""
    from core import tempfiles

    root = tmp_path / "root"
    monkeypatch.setenv("PLAYGROUND_TEMP_DIR", str(root))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(root))
    monkeypatch.setattr(tempfiles, "_OPERATOR_GRADIO_DIR", None)
    import app

    demo = app.build_app()
    examples = {p for b in demo.blocks.values() for p in getattr(b, "keep_in_cache", ())}
    examples = {p for p in examples if Path(p).resolve().is_relative_to(root.resolve())}
    assert len(examples) >= 5, examples
    junk = _fill(root / ("c" * 64) / "old-upload.png", 10_000)
    monkeypatch.setenv("PLAYGROUND_TEMP_MAX_MB", "0.01")
    report = tempfiles.prune(now=time.time() + 7 * 3600)
    assert not junk.exists() and report["held"] >= 1
    assert all(Path(p).exists() for p in examples), [p for p in examples if not Path(p).exists()]


def test_an_operators_gradio_temp_dir_is_capped(monkeypatch, tmp_path):
    """Item 6: GRADIO_TEMP_DIR set by the operator is the capped root; set beside a different PLAYGROUND_TEMP_DIR,
    Gradio's entries there are capped with it and nothing else of the operator's folder is touched."""
    from core import tempfiles

    op = tmp_path / "operator-gradio"
    notes = _fill(op / "operator-notes.txt", 10_000)
    monkeypatch.delenv("PLAYGROUND_TEMP_DIR", raising=False)
    monkeypatch.setattr(tempfiles, "_OPERATOR_GRADIO_DIR", str(op))
    monkeypatch.setenv("PLAYGROUND_TEMP_MAX_MB", "1")
    assert tempfiles.temp_root() == op and tempfiles.gradio_dir() == op
    uploads = [_fill(op / f"{i:064x}" / "up.bin", 300_000, time.time() - 100 + i) for i in range(6)]
    run = Path(tempfiles.run_dir("finetune")) / "w.safetensors"
    _fill(run, 100_000)
    tempfiles.prune()
    assert tempfiles.usage_cost() <= 1 << 20 and uploads[-1].exists() and not uploads[0].exists()
    assert notes.exists() and run.exists()
    ours = tmp_path / "ours"
    monkeypatch.setenv("PLAYGROUND_TEMP_DIR", str(ours))
    assert [r for r, _ in tempfiles.roots()] == [ours, op]
    more = [_fill(op / f"{i + 10:064x}" / "up.bin", 400_000) for i in range(4)]
    tempfiles.prune()
    assert tempfiles.usage_cost() <= 1 << 20 and sum(f.exists() for f in more) < 4 and notes.exists()


@pytest.mark.app   # a fresh interpreter imports app.py as `python app.py` does
def test_app_hands_gradio_the_capped_folder_when_the_operator_sets_gradio_temp_dir(tmp_path):
    import subprocess
    import sys

    op = tmp_path / "op"
    env = {k: v for k, v in os.environ.items() if k not in ("PLAYGROUND_TEMP_DIR", "GRADIO_TEMP_DIR")}
    env["GRADIO_TEMP_DIR"] = str(op)
    code = ("import app; from gradio.utils import get_upload_folder; from core import tempfiles; "
            "print(get_upload_folder()); print(tempfiles.temp_root()); print([str(r) for r, _ in tempfiles.roots()])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    upload, root, roots = out.stdout.strip().splitlines()[-3:]
    assert Path(upload) == op and Path(root) == op and roots == f"['{op}']"


@pytest.mark.app   # its own app server, on its own temp folder, so that pruning it touches nobody else's files
@pytest.mark.timeout(300)
def test_an_upload_flood_does_not_delete_another_visitors_download(monkeypatch, tmp_path):
    """Two clients on a server with a 6 MB temp cap: the victim exports a run (a fresh download); the attacker
    uploads 12 files of 1 MB, using some in requests. After pruning the victim's zip is there, the folder fits."""
    from gradio_client import Client

    from tests.conftest import free_port
    from core import tempfiles

    root = tmp_path / "server-temp"
    monkeypatch.setenv("PLAYGROUND_TEMP_DIR", str(root))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(root))
    monkeypatch.setattr(tempfiles, "_OPERATOR_GRADIO_DIR", None)
    import app

    demo = app.build_app()
    demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs(host="127.0.0.1", port=free_port()))
    try:
        url = demo.local_url.rstrip("/")
        victim = Client(url, verbose=False)
        served = [p for p in root.rglob("*.zip")]         # the run's zip and the copy Gradio serves
        assert not served
        victim.predict(api_name="/export_run")
        served = list(root.rglob("*.zip"))          # the run's zip, and the copy Gradio serves if it made one
        assert served
        monkeypatch.setenv("PLAYGROUND_TEMP_MAX_MB", str(tempfiles.usage_cost() / (1 << 20) + 6))
        idx = queue_api.fn_index(demo, "classify")
        for i in range(12):
            files = {"files": (f"flood-{i}.bin", os.urandom(1 << 20), "application/octet-stream")}
            r = httpx.post(f"{url}/gradio_api/upload", files=files, timeout=60)
            r.raise_for_status()
            if i % 2:   # a request that names the upload (the attacker's own session owns it)
                body = {"path": r.json()[0], "meta": {"_type": "gradio.FileData"}}
                _join(url, idx, [body, "resnet_digits", 3], f"attacker-{i}")
        report = tempfiles.prune()
        assert all(p.exists() for p in served), "the victim's fresh download was deleted"
        assert report["cost"] <= tempfiles.limits()["max_bytes"] and report["deleted"] >= 6
    finally:
        demo.close()


# ------------------------------------------------------------------ 7. jobs shared by address

class _SlowRunner:
    """A runner whose jobs take params['s'] seconds (or until cancelled)."""

    def run(self, job_id, kind, params, job_dir, emit, cancelled):
        t0 = time.monotonic()
        while time.monotonic() - t0 < params.get("s", 0.2):
            if cancelled():
                from jobs.wire import JobCancelled
                raise JobCancelled("cancelled")
            time.sleep(0.02)
        return {"ok": job_id}

    def close(self):
        pass


def test_jobs_take_turns_by_address_and_one_address_has_a_share(monkeypatch, tmp_path):
    from jobs.queue import JobQueue, JobRefused

    monkeypatch.setenv("PLAYGROUND_TEMP_DIR", str(tmp_path / "root"))
    monkeypatch.setenv("PLAYGROUND_JOBS_PER_IP", "4")
    q = JobQueue(_SlowRunner, workers=1)
    try:
        attacker = [q.submit(f"a{i}", "resample", {"s": 1.0}, address=ATTACKER_IP) for i in range(4)]
        with pytest.raises(JobRefused, match="Your address already has 4 jobs"):
            q.submit("a4", "resample", {"s": 1.0}, address=ATTACKER_IP)
        assert _wait(lambda: attacker[0].state == "running", 30)
        victim = q.submit("v", "resample", {"s": 0.1}, address=VICTIM_IP)
        assert q.position(victim) == 1                       # next, ahead of the attacker's three queued
        assert victim.finished.wait(60) and victim.state == "done"
        assert victim.started < min(j.started or float("inf") for j in attacker[1:])
        assert attacker[0].finished.is_set()                 # it waited for exactly the one running job
        for j in attacker:
            assert j.finished.wait(60)
        # Turns: two addresses with three jobs each alternate.
        a = [q.submit(f"x{i}", "resample", {"s": 0.05}, address="192.0.2.1") for i in range(3)]
        b = [q.submit(f"y{i}", "resample", {"s": 0.05}, address="192.0.2.2") for i in range(3)]
        for j in a + b:
            assert j.finished.wait(60)
        order = [j.address for j in sorted(a + b, key=lambda j: j.started)]
        assert order == ["192.0.2.1", "192.0.2.2"] * 3, order
    finally:
        q.close()


@pytest.mark.timeout(400)
def test_a_victims_job_is_next_however_many_one_address_queued(app_url, on_a_space, monkeypatch):
    """Through the API on a Space: one address's six sessions ask for long fine-tunes; four are accepted (its
    share), two refused; the victim's job from another address is next in line (position 1) and runs after the
    attacker's running job, before its queued ones."""
    from gradio_client import Client

    from jobs.queue import get_queue

    q = get_queue()
    kw = dict(model="resnet_digits", target="digits", stage1_epochs=20, stage2_epochs=20, max_steps=0,
              compare_scratch=False, api_name="/finetune")
    attackers = [Client(app_url, verbose=False, headers={"x-forwarded-for": ATTACKER_IP}) for _ in range(6)]
    jobs = [a.submit(**kw) for a in attackers]
    assert _wait(lambda: sum(1 for j in q._active.values() if j.address == ATTACKER_IP) == 4, 120)
    refused = []
    for j in jobs:
        try:
            j.result(timeout=1)
        except Exception as exc:  # noqa: BLE001 - the still-running ones time out; the refused raise their reason
            if "Your address already has" in str(exc):
                refused.append(str(exc))
    assert len(refused) == 2, refused
    victim = Client(app_url, verbose=False, headers={"x-forwarded-for": VICTIM_IP})
    vjob = victim.submit(model="resnet_digits", target="digits", stage1_epochs=1, stage2_epochs=0, max_steps=2,
                         compare_scratch=False, api_name="/finetune")
    assert _wait(lambda: q.active(victim.session_hash) is not None, 120)
    mine = q.active(victim.session_hash)
    assert mine.address == VICTIM_IP and q.position(mine) in (0, 1)
    running = [j for j in q._active.values() if j.address == ATTACKER_IP and j.state == "running"]
    for a in attackers:                      # end the running attacker job early: the victim's is next
        if running and a.session_hash == running[0].session:
            q.cancel(a.session_hash)
    assert mine.finished.wait(240) and mine.state == "done", mine.error
    assert all(j.started is None or j.started >= mine.started
               for j in q._active.values() if j.address == ATTACKER_IP and j not in running)
    for a in attackers:
        q.cancel(a.session_hash)
    vjob.result(timeout=120)


# ------------------------------------------------------------------ 9. Look inside's summary

def test_the_layer_summary_runs_on_meta_tensors():
    from look_inside import views

    rows, text = views.summary_view("vgg16", 1024, 1024)
    assert "Total params: 138,357,544" in text and any(r[2] == "1x64x1024x1024" for r in rows)
    assert all(p.device.type == "meta" for p in views._architecture("vgg16").parameters())


@pytest.mark.timeout(300)
def test_four_big_summaries_do_not_stall_the_tab(client, app_url):
    """Four 1024x1024 VGG-16 summaries at once (22 s each under a global lock before) and a victim's summary:
    all answer, the victim's within a bound a busy machine meets."""
    from gradio_client import Client

    attackers = [Client(app_url, verbose=False) for _ in range(4)]
    t0 = time.perf_counter()
    jobs = [a.submit("vgg16", 1024, 1024, 4, api_name="/model_summary") for a in attackers]
    t1 = time.perf_counter()
    rows, text, _code = client.predict("resnet_digits", 0, 0, 4, api_name="/model_summary")
    victim_s = time.perf_counter() - t1
    outs = [j.result(timeout=120) for j in jobs]
    assert "Total params" in text and victim_s < 30, victim_s
    assert all("138,357,544" in o[1] for o in outs) and time.perf_counter() - t0 < 60

