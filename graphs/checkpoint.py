"""Checkpoints: a thread's state after every superstep, the writes of tasks that already finished,
and the savers that keep them (in memory here; SQLite and PostgreSQL in their own modules).

Only channels that changed are stored, each under the id of the checkpoint that changed it. A list
that grew by appending (a message history) is stored as its new tail plus a reference to the
previous version, with a full copy every `SNAPSHOT_EVERY` links, so a long conversation's
checkpoints grow linearly instead of quadratically. Values are pickled: checkpoints are trusted
data, so keep the database where only the application writes.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

SNAPSHOT_EVERY = 64

# A task to run: ("start", START, input) | ("pull", node, None) | ("push", node, arg)
TaskSpec = tuple[str, str, Any]


@dataclass(slots=True)
class Checkpoint:
    """The state between two supersteps and what runs next."""

    id: str
    step: int
    values: dict[str, Any]
    tasks: list[TaskSpec] = field(default_factory=list)
    joins: dict[str, list[str]] = field(default_factory=dict)  # join target -> sources done so far
    deferred: list[str] = field(default_factory=list)  # defer=True nodes waiting for a quiet graph
    versions: dict[str, str] = field(default_factory=dict)  # channel -> id of the checkpoint that last changed it
    interrupted: bool = False  # stopped by interrupt_before: running it again goes past the breakpoint


@dataclass(slots=True)
class CheckpointTuple:
    config: dict
    checkpoint: Checkpoint
    metadata: dict
    parent_config: dict | None
    pending_writes: list[tuple[str, str, Any]]  # (task_id, channel, value) of tasks that finished
    created_at: str


def thread_of(config: dict | None) -> tuple[str, str, str | None]:
    """(thread_id, checkpoint_ns, checkpoint_id) of a run config; raises if it has no thread_id."""
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        raise ValueError(
            "Checkpointer requires one or more of the following 'configurable' keys: thread_id, checkpoint_ns, checkpoint_id"
        )
    return str(thread_id), configurable.get("checkpoint_ns", ""), configurable.get("checkpoint_id")


def make_config(thread_id: str, ns: str, checkpoint_id: str) -> dict:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}


_last_id = 0
_id_lock = threading.Lock()


def new_checkpoint_id() -> str:
    """Time-ordered, unique within the process: newer checkpoints sort after older ones."""
    global _last_id
    with _id_lock:
        _last_id = max(time.time_ns(), _last_id + 1)
        return f"{_last_id:020d}"


class BaseCheckpointSaver:
    """Stores checkpoints, their changed channels and per-task pending writes.

    Subclasses implement the `_`-prefixed storage primitives; this class does the encoding, the
    append-only deltas and the async API (the sync calls in a worker thread).
    """

    max_cached_lists = 4096  # lists remembered for deltas (least recently saved dropped first)

    def __init__(self) -> None:
        # per (thread, ns, channel): (version, the list as stored, links since the last full copy)
        self._stored_lists: OrderedDict[tuple[str, str, str], tuple[str, tuple, int]] = OrderedDict()
        self._lock = threading.RLock()

    # --- public API ---------------------------------------------------------------------

    def close(self) -> None:
        """Release the storage's connections (a `with` block calls it)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def put(self, config: dict, checkpoint: Checkpoint, metadata: dict, changed: set[str], parent_id: str | None) -> dict:
        """Store a checkpoint; `changed` names the channels whose value changed since `parent_id`."""
        thread_id, ns, _ = thread_of(config)
        with self._lock:
            blobs = [(channel, checkpoint.id, self._encode_channel(thread_id, ns, channel, checkpoint))
                     for channel in sorted(changed) if channel in checkpoint.values]
            row = {
                "step": checkpoint.step, "tasks": checkpoint.tasks, "joins": checkpoint.joins,
                "deferred": checkpoint.deferred, "versions": checkpoint.versions, "interrupted": checkpoint.interrupted,
                "metadata": metadata, "created_at": datetime.now(timezone.utc).isoformat(),
            }
            self._put(thread_id, ns, checkpoint.id, parent_id, _dumps(row), blobs)
        return make_config(thread_id, ns, checkpoint.id)

    def put_writes(self, config: dict, writes: list[tuple[str, Any]], task_id: str) -> None:
        """Store what one task of the checkpoint in `config` wrote, as soon as it finishes."""
        thread_id, ns, checkpoint_id = thread_of(config)
        rows = [(i, channel, _dumps(value)) for i, (channel, value) in enumerate(writes)]
        with self._lock:
            self._put_writes(thread_id, ns, checkpoint_id, task_id, rows)

    def get_tuple(self, config: dict) -> CheckpointTuple | None:
        """The checkpoint named by `config` (the thread's latest without a checkpoint_id)."""
        thread_id, ns, checkpoint_id = thread_of(config)
        with self._lock:
            found = self._get(thread_id, ns, checkpoint_id)
            return None if found is None else self._tuple(thread_id, ns, *found)

    def list(self, config: dict, *, before: dict | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        """The thread's checkpoints, newest first."""
        thread_id, ns, _ = thread_of(config)
        before_id = thread_of(before)[2] if before else None
        with self._lock:
            rows = self._list(thread_id, ns, before_id, limit)
            tuples = [self._tuple(thread_id, ns, *row) for row in rows]
        yield from tuples

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            self._delete_thread(str(thread_id))
            for key in [k for k in self._stored_lists if k[0] == str(thread_id)]:
                del self._stored_lists[key]

    async def aput(self, *args, **kwargs) -> dict:
        return await asyncio.to_thread(self.put, *args, **kwargs)

    async def aput_writes(self, *args, **kwargs) -> None:
        await asyncio.to_thread(self.put_writes, *args, **kwargs)

    async def aget_tuple(self, config: dict) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(self, config: dict, *, before: dict | None = None, limit: int | None = None):
        for item in await asyncio.to_thread(lambda: list(self.list(config, before=before, limit=limit))):
            yield item

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    # --- encoding -----------------------------------------------------------------------

    def _encode_channel(self, thread_id: str, ns: str, channel: str, checkpoint: Checkpoint) -> bytes:
        """A changed channel's blob: its new tail if it is a list that grew by appending to what this
        saver stored last (same element objects), else the full value."""
        value = checkpoint.values[channel]
        key = (thread_id, ns, channel)
        previous = self._stored_lists.pop(key, None)
        if not isinstance(value, list):
            return _dumps(("full", value))
        blob, links = None, 0
        if previous is not None and previous[2] < SNAPSHOT_EVERY and len(value) >= len(previous[1]):
            base_version, stored, links = previous
            if all(a is b for a, b in zip(stored, value)):
                blob, links = _dumps(("append", base_version, value[len(stored):])), links + 1
        self._remember(thread_id, ns, channel, checkpoint.id, value, links if blob else 0)
        return blob or _dumps(("full", value))

    def _remember(self, thread_id: str, ns: str, channel: str, version: str, value: list, links: int) -> None:
        key = (thread_id, ns, channel)
        self._stored_lists[key] = (version, tuple(value), links)
        self._stored_lists.move_to_end(key)
        while len(self._stored_lists) > self.max_cached_lists:
            self._stored_lists.popitem(last=False)

    def _value(self, thread_id: str, ns: str, channel: str, version: str) -> tuple[Any, int]:
        """A channel's value at `version`, and how many append links it took to rebuild."""
        kind, *rest = _loads(self._get_blob(thread_id, ns, channel, version))
        if kind == "full":
            return rest[0], 0
        base_version, tail = rest
        base, links = self._value(thread_id, ns, channel, base_version)
        return base + tail, links + 1

    def _tuple(self, thread_id: str, ns: str, checkpoint_id: str, parent_id: str | None, data: bytes) -> CheckpointTuple:
        row = _loads(data)
        values = {}
        for channel, version in row["versions"].items():
            values[channel], links = self._value(thread_id, ns, channel, version)
            if isinstance(values[channel], list):  # a run continuing from here appends to this list
                self._remember(thread_id, ns, channel, version, values[channel], links)
        checkpoint = Checkpoint(checkpoint_id, row["step"], values, row["tasks"], row["joins"], row["deferred"],
                                row["versions"], row["interrupted"])
        writes = [(task_id, channel, _loads(value)) for task_id, channel, value in self._get_writes(thread_id, ns, checkpoint_id)]
        return CheckpointTuple(
            make_config(thread_id, ns, checkpoint_id), checkpoint, row["metadata"],
            make_config(thread_id, ns, parent_id) if parent_id else None, writes, row["created_at"],
        )

    # --- storage primitives -------------------------------------------------------------

    def _put(self, thread_id, ns, checkpoint_id, parent_id, data: bytes, blobs: list[tuple[str, str, bytes]]) -> None:
        raise NotImplementedError

    def _put_writes(self, thread_id, ns, checkpoint_id, task_id, rows: list[tuple[int, str, bytes]]) -> None:
        raise NotImplementedError

    def _get(self, thread_id, ns, checkpoint_id: str | None) -> tuple[str, str | None, bytes] | None:
        """(checkpoint_id, parent_id, data) of one checkpoint, or of the newest one."""
        raise NotImplementedError

    def _list(self, thread_id, ns, before_id: str | None, limit: int | None) -> list[tuple[str, str | None, bytes]]:
        raise NotImplementedError

    def _get_blob(self, thread_id, ns, channel, version) -> bytes:
        raise NotImplementedError

    def _get_writes(self, thread_id, ns, checkpoint_id) -> list[tuple[str, str, bytes]]:
        raise NotImplementedError

    def _delete_thread(self, thread_id) -> None:
        raise NotImplementedError


class InMemorySaver(BaseCheckpointSaver):
    """Checkpoints in process memory (pickled, so later changes to live objects do not leak in):
    for tests and for threads that need not outlive the process."""

    def __init__(self) -> None:
        super().__init__()
        self.checkpoints: dict[tuple[str, str], dict[str, tuple[str | None, bytes]]] = {}
        self.blobs: dict[tuple[str, str, str, str], bytes] = {}
        self.writes: dict[tuple[str, str, str], dict[tuple[str, int], tuple[str, bytes]]] = {}

    def _put(self, thread_id, ns, checkpoint_id, parent_id, data, blobs) -> None:
        self.checkpoints.setdefault((thread_id, ns), {})[checkpoint_id] = (parent_id, data)
        for channel, version, blob in blobs:
            self.blobs[(thread_id, ns, channel, version)] = blob

    def _put_writes(self, thread_id, ns, checkpoint_id, task_id, rows) -> None:
        stored = self.writes.setdefault((thread_id, ns, checkpoint_id), {})
        start = sum(1 for t, _ in stored if t == task_id)  # a task may write again (interrupt, resume...)
        for idx, channel, value in rows:
            stored[(task_id, start + idx)] = (channel, value)

    def _get(self, thread_id, ns, checkpoint_id):
        thread = self.checkpoints.get((thread_id, ns), {})
        if checkpoint_id is None:
            checkpoint_id = max(thread, default=None)
        if checkpoint_id not in thread:
            return None
        return (checkpoint_id, *thread[checkpoint_id])

    def _list(self, thread_id, ns, before_id, limit):
        thread = self.checkpoints.get((thread_id, ns), {})
        ids = sorted((i for i in thread if before_id is None or i < before_id), reverse=True)[:limit]
        return [(i, *thread[i]) for i in ids]

    def _get_blob(self, thread_id, ns, channel, version) -> bytes:
        return self.blobs[(thread_id, ns, channel, version)]

    def _get_writes(self, thread_id, ns, checkpoint_id):
        stored = self.writes.get((thread_id, ns, checkpoint_id), {})
        return [(task_id, channel, value) for (task_id, _), (channel, value) in sorted(stored.items())]

    def _delete_thread(self, thread_id) -> None:
        for store in (self.checkpoints, self.blobs, self.writes):
            for key in [k for k in store if k[0] == thread_id]:
                del store[key]

    def size_bytes(self) -> int:
        """Bytes of stored checkpoint data: rows, channel blobs and pending writes."""
        rows = sum(len(data) for thread in self.checkpoints.values() for _, data in thread.values())
        writes = sum(len(v) for stored in self.writes.values() for _, v in stored.values())
        return rows + sum(len(b) for b in self.blobs.values()) + writes


def _dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _loads(data: bytes) -> Any:
    return pickle.loads(data)
