"""An event cancelled before it starts still gives its place in the queue back.

Gradio 6.31's queue counts an event against its concurrency limit and takes one of the queue's active-job places,
then starts it as a task (Queue.start_processing: utils.run_coro_in_background(self.process_events, ...)), and
process_events gives both back in its `finally`. /cancel, which anyone may call, cancels that task by name
(utils.cancel_tasks). A task cancelled before its first step never runs its coroutine at all, so that `finally`
never runs: the event's concurrency slot and its active-job place stay taken for good. A script sending /cancel
right after each join can land in that window; every hit takes a place away from every visitor, until the event
(or the whole queue) starts nothing more.

install() wraps the task Gradio starts for each event: when the task ends without its coroutine having started,
the place is given back as process_events' `finally` would have (the concurrency count, the start time, the
active-job place, the event's entries) and the coroutine is closed. Checked against Gradio's code at install.
"""
from __future__ import annotations

import asyncio
import inspect

from gradio import queueing

_INSTALLED = False


def give_back(queue, events: list, begin_time: float, fn) -> None:
    """What Queue.process_events' `finally` does for events whose processing never began."""
    event_queue = queue.event_queue_per_concurrency_id.get(events[0].concurrency_id)
    if event_queue is not None:
        event_queue.current_concurrency = max(0, event_queue.current_concurrency - 1)
        start_times = event_queue.start_times_per_fn.get(fn)
        if start_times is not None:
            start_times.discard(begin_time)
            if not start_times:
                del event_queue.start_times_per_fn[fn]
    try:
        queue.active_jobs[queue.active_jobs.index(events)] = None
    except ValueError:
        pass
    for event in events:
        if (a := queue.event_analytics.get(event._id)) is not None:
            a["status"] = "cancelled"
        queue.event_ids_to_events.pop(event._id, None)


def run_coro_in_background(func, *args, **kwargs):
    """gradio.utils.run_coro_in_background, with a queue's process_events task guarded (module docstring)."""
    queue = getattr(func, "__self__", None)
    if getattr(func, "__name__", "") != "process_events" or not isinstance(queue, queueing.Queue) or kwargs:
        return asyncio.get_event_loop().create_task(func(*args, **kwargs))
    events, _batch, begin_time, fn = args
    coro = func(*args)
    started = False

    async def run():
        nonlocal started
        started = True
        return await coro

    def done(_task) -> None:
        if not started:
            coro.close()
            give_back(queue, events, begin_time, fn)

    task = asyncio.get_event_loop().create_task(run())
    task.add_done_callback(done)
    return task


def _check_gradio() -> None:
    problems = []
    start = inspect.getsource(queueing.Queue.start_processing)
    if "run_coro_in_background(\n                        self.process_events" not in start:
        problems.append("Queue.start_processing no longer starts process_events with run_coro_in_background")
    if "current_concurrency += 1" not in start:
        problems.append("Queue.start_processing no longer counts the event before starting it")
    process = inspect.getsource(queueing.Queue.process_events)
    for piece in ("finally:", "current_concurrency -= 1", "start_times.discard(begin_time)",
                  "self.active_jobs[self.active_jobs.index(events)] = None", "self.event_ids_to_events.pop("):
        if piece not in process:
            problems.append(f"Queue.process_events no longer has {piece!r}")
    if tuple(inspect.signature(queueing.Queue.process_events).parameters) != ("self", "events", "batch",
                                                                             "begin_time", "fn"):
        problems.append("Queue.process_events takes other parameters")
    if problems:
        raise RuntimeError("ui.queue_cancel was written for Gradio 6.31's queue: " + "; ".join(problems))


def install() -> None:
    """Guard every queue's event tasks (once per process: Gradio's queue module is shared)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _check_gradio()
    queueing.run_coro_in_background = run_coro_in_background
    _INSTALLED = True
