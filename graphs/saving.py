"""Where a run's checkpoints and task writes go, and when: durability "sync" (before the run goes
on), "async" (in order, on one background thread, off the critical path) or "exit" (only the last
checkpoint, when the run ends)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from .algo import copy_checkpoint
from .checkpoint import BaseCheckpointSaver, Checkpoint, make_config

DURABILITY = ("sync", "async", "exit")
# configurable keys that address a checkpoint or a task rather than describe the run
_NOT_METADATA = frozenset({"thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map"})


def run_metadata(config: dict) -> dict:
    """What every checkpoint of a run records about it, as in LangGraph: the config's `metadata`
    and its plain (str, int, float, bool) `configurable` values, e.g. a user or task id, so a
    checkpoint can be traced back to the request that wrote it."""
    found: dict = {}
    for source in (config.get("metadata"), config.get("configurable")):
        for key, value in (source or {}).items():
            if key not in found and key not in _NOT_METADATA and not key.startswith("__") \
                    and isinstance(value, (str, int, float, bool)):
                found[key] = value
    return found


class Persistence:
    """One run's view of its checkpointer (`saver` None: nothing is kept). Subgraphs that share
    the checkpointer share the outermost run's background writer."""

    def __init__(self, saver: BaseCheckpointSaver | None, durability: str, thread_id: str | None, ns: str,
                 parent: Persistence | None, metadata: dict) -> None:
        if durability not in DURABILITY:
            raise ValueError(f"durability must be 'sync', 'async' or 'exit', got {durability!r}")
        self.saver, self.durability, self.thread_id, self.ns = saver, durability, thread_id, ns
        self.metadata = metadata  # the run's own, added to each checkpoint's (see `run_metadata`)
        self.parent = parent
        self.writer: _Writer | None = None  # durability "async": the background writer (outermost run's)
        self.unsaved: tuple | None = None  # durability "exit": the last checkpoint, saved at close
        self.unsaved_writes: list[tuple[str, list]] = []
        self.last_id: str | None = None  # the checkpoint the unsaved writes belong to

    def config(self, checkpoint_id: str | None) -> dict:
        return make_config(self.thread_id, self.ns, checkpoint_id)

    def save(self, checkpoint: Checkpoint, metadata: dict, changed: set[str], parent_id: str | None) -> None:
        if self.saver is None:
            return
        config = self.config(checkpoint.id)
        metadata = {**self.metadata, **metadata}
        if self.durability == "exit":
            if self.unsaved is not None:  # keep the channels changed since the last stored checkpoint
                changed = changed | self.unsaved[3]
                parent_id = self.unsaved[4]
            self.unsaved = (config, checkpoint, metadata, changed, parent_id)
            self.unsaved_writes = []
            return
        self._submit(self.saver.put, config, copy_checkpoint(checkpoint), metadata, changed, parent_id)

    def save_writes(self, checkpoint_id: str, task_id: str, writes: list[tuple[str, Any]]) -> None:
        if self.saver is None:
            return
        if self.durability == "exit":  # kept for close(): they matter only if the run stops mid-step
            self.last_id = checkpoint_id
            self.unsaved_writes.append((task_id, list(writes)))
            return
        self._submit(self.saver.put_writes, self.config(checkpoint_id), list(writes), task_id)

    def _submit(self, fn, *args) -> None:
        if self.durability == "sync":
            fn(*args)
            return
        root = self
        while root.parent is not None and root.parent.saver is self.saver:
            root = root.parent
        with _writer_lock:
            if root.writer is None:
                root.writer = _Writer()
        root.writer.submit(fn, args)

    def close(self) -> None:
        """Wait for background saves; with durability "exit", store the final checkpoint now."""
        if self.writer is not None:
            self.writer.close()
        if self.saver is not None and self.durability == "exit":
            if self.unsaved is not None:
                self.saver.put(*self.unsaved)
            for task_id, writes in self.unsaved_writes:
                self.saver.put_writes(self.config(self.last_id), writes, task_id)


_writer_lock = threading.Lock()


class _Writer:
    """Saves run in order on one background thread; `close()` waits for them and raises the first failure."""

    def __init__(self) -> None:
        self.pending: deque = deque()
        self.wake = threading.Event()
        self.closing = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name="agentforge-checkpoint", daemon=True)
        self.thread.start()

    def submit(self, fn, args: tuple) -> None:
        self.pending.append((fn, args))
        self.wake.set()

    def _work(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            while self.pending:
                fn, args = self.pending.popleft()
                if self.error is None:
                    try:
                        fn(*args)
                    except BaseException as exc:  # reported by close()
                        self.error = exc
            if self.closing and not self.pending:
                return

    def close(self) -> None:
        self.closing = True
        self.wake.set()
        self.thread.join()
        if self.error is not None:
            raise self.error
