"""/cancel landing before an event's task starts must not take its place in the queue for good (ui/queue_cancel)."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
from gradio import queueing, utils

from ui import queue_cancel

SESSION = "queue-cancel-test"
set_task_name = queueing.set_task_name


def _cancelled_at_once(monkeypatch, guarded: bool) -> tuple[int, list, int]:
    """Three events of a concurrency-1 event, each task cancelled between its creation and its first step (where a
    /cancel sent right after the join can land: Gradio names the task, which /cancel finds it by, in the same
    step that creates it). Returns (the concurrency count, the active-job places, how many were started)."""
    with gr.Blocks() as demo:
        gr.Button().click(lambda: None, None, None, concurrency_limit=1)
    demo.queue()
    q = demo._queue
    q.live_updates = False
    fn = next(iter(demo.fns.values())) if isinstance(demo.fns, dict) else demo.fns[0]
    q.create_event_queue_for_fn(fn)
    started = []

    def name_then_cancel(task, session_hash, *args):
        if session_hash != SESSION:   # a server another test left running names its own tasks as usual
            return set_task_name(task, session_hash, *args)
        task.cancel()
        started.append(task)

    monkeypatch.setattr(queueing, "set_task_name", name_then_cancel)
    monkeypatch.setattr(queueing, "run_coro_in_background",
                        queue_cancel.run_coro_in_background if guarded else utils.run_coro_in_background)

    async def main():
        q.active_jobs = [None] * 2
        loop = asyncio.create_task(q.start_processing())
        for _ in range(3):
            q.event_queue_per_concurrency_id[fn.concurrency_id].queue.append(queueing.Event(SESSION, fn, None, None))
            for _ in range(50):
                await asyncio.sleep(0.002)
        q.stopped = True
        await asyncio.wait_for(loop, 5)
        return q.event_queue_per_concurrency_id[fn.concurrency_id].current_concurrency, list(q.active_jobs)

    # in a thread of its own: a browser test's Playwright may hold a running event loop in this one
    with ThreadPoolExecutor(1) as pool:
        current, jobs = pool.submit(asyncio.run, main()).result(timeout=60)
    return current, jobs, len(started)


def test_an_event_cancelled_before_it_starts_gives_its_place_back(monkeypatch):
    assert _cancelled_at_once(monkeypatch, guarded=True) == (0, [None, None], 3)


def test_without_the_guard_the_place_is_lost(monkeypatch):  # Gradio's own function, even after app.build_app()
    """The bug the guard is for, shown on Gradio's own code: one early cancel and the event never starts again."""
    current, jobs, started = _cancelled_at_once(monkeypatch, guarded=False)
    assert (current, started) == (1, 1) and jobs.count(None) == 1


def test_the_guard_is_installed_by_the_app():
    import app  # noqa: F401 - building the app installs it (ui.sessions.install)

    app.build_app()
    assert queueing.run_coro_in_background is queue_cancel.run_coro_in_background
