"""The tracing thread: finished runs queue their export jobs here and one background thread runs
them in batches, waking every `PERIOD` seconds, when `BATCH` jobs wait, or when someone flushes.
A run hands over its job with one append (no thread wake-up per run: on a busy graph that hand-off
cost more than the tracing itself); traces reach the exporters within about `PERIOD`."""

from __future__ import annotations

import atexit
import os
import threading
from collections import deque
from collections.abc import Callable

PERIOD = 0.2  # seconds a finished run may wait for its export
BATCH = 64  # queued runs that wake the thread early

_jobs: deque[Callable[[], None]] = deque()
_cond = threading.Condition()
_state = {"queued": 0, "done": 0, "flushing": 0}
_thread: threading.Thread | None = None
_batch_end: dict[Callable[[], None], None] = {}  # run once each after the jobs of the batch (tracing thread only)


def submit(job: Callable[[], None]) -> None:
    """Queue `job` (it must not raise) for the tracing thread."""
    global _thread
    with _cond:
        _jobs.append(job)
        _state["queued"] += 1
        if _thread is None:
            _thread = threading.Thread(target=_work, name="agentforge-tracing", daemon=True)
            _thread.start()
            atexit.register(flush)
        elif len(_jobs) == 1 or len(_jobs) >= BATCH:  # work arrived, or enough to start early
            _cond.notify()


def flush(timeout: float | None = 30.0) -> bool:
    """Wait until every job queued so far has run; False if some is still running after `timeout`."""
    with _cond:
        target = _state["queued"]
        _state["flushing"] += 1
        _cond.notify_all()
        try:
            return _cond.wait_for(lambda: _state["done"] >= target, timeout)
        finally:
            _state["flushing"] -= 1


def on_tracing_thread() -> bool:
    return threading.current_thread() is _thread


def at_batch_end(callback: Callable[[], None]) -> None:
    """Run `callback` (it must not raise) once the tracing thread has run the jobs it woke for,
    before `flush` returns: e.g. one commit for the batch instead of one per run."""
    _batch_end[callback] = None


def _after_fork() -> None:
    """A forked child has no tracing thread: start afresh (the parent's queued runs stay the parent's)."""
    global _cond, _thread
    _cond, _thread = threading.Condition(), None
    _jobs.clear()
    _batch_end.clear()
    _state.update(queued=0, done=0, flushing=0)


os.register_at_fork(after_in_child=_after_fork)


def _work() -> None:
    while True:
        with _cond:
            _cond.wait_for(lambda: _jobs)  # asleep while there is nothing to export
            _cond.wait_for(lambda: len(_jobs) >= BATCH or _state["flushing"], PERIOD)
            jobs = list(_jobs)
            _jobs.clear()
        for job in jobs:
            _run(job)
        callbacks = list(_batch_end)  # what the jobs left for the batch's end
        _batch_end.clear()
        for callback in callbacks:
            _run(callback)
        with _cond:
            _state["done"] += len(jobs)
            _cond.notify_all()


def _run(job: Callable[[], None]) -> None:
    try:
        job()
    except Exception:  # only a warning turned into an error gets here; the thread must live on
        pass
