"""The compiled graph: `invoke` / `stream` (and their async twins), state, history and updates.

A run proceeds in Pregel supersteps. Each step runs its tasks (the nodes triggered by the previous
step, and one task per `Send`) on the state as it was before the step; their writes are buffered
and applied together at the barrier, in task order (triggered nodes by name, then Sends in the
order they were sent), through each key's reducer. Routing (static edges, conditional edges,
`Command.goto`) is computed inside the task, on the state plus the task's own writes, and stored
with its writes: a task that finished is never re-run on resume, because its writes are saved the
moment it finishes. The loop is `loop.py`, task execution `tasks.py`, the node API `runtime.py`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import queue
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from .algo import BREAKPOINT, INTERRUPT, Task, by_task, next_tasks, output_values, routing, tasks_of, update_dict
from .checkpoint import BaseCheckpointSaver, Checkpoint, make_config, new_checkpoint_id, thread_of
from .loop import _Run
from .saving import run_metadata
from .spec import GraphSpec
from .state import apply_writes, update_writes, validate_state
from .tasks import call_async, call_sync
from .types import START, Command, InvalidUpdateError, PregelTask, StateSnapshot


class CompiledStateGraph:
    """A runnable graph: `invoke`/`stream` (and their async twins), `get_state`, `update_state`."""

    _is_compiled_graph = True

    def __init__(self, spec: GraphSpec, *, checkpointer, cache, interrupt_before, interrupt_after, name, debug,
                 store=None) -> None:
        self.spec = spec
        self.checkpointer: BaseCheckpointSaver | None = checkpointer if checkpointer not in (True, False) else None
        self.inherit_checkpointer = checkpointer is None  # a subgraph uses its parent's
        self.cache = cache
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.name = name
        self.debug = debug
        self.store = store

    # --- running --------------------------------------------------------------------------

    def invoke(self, input: Any, config: dict | None = None, *, stream_mode: str = "values", **kwargs) -> Any:
        """Run until the graph ends or pauses; return the final state (plus `__interrupt__` if paused)."""
        return _final(self.stream(input, config, stream_mode=["values", "updates"], **kwargs), stream_mode)

    async def ainvoke(self, input: Any, config: dict | None = None, *, stream_mode: str = "values", **kwargs) -> Any:
        chunks = [c async for c in self.astream(input, config, stream_mode=["values", "updates"], **kwargs)]
        return _final(iter(chunks), stream_mode)

    def stream(
        self,
        input: Any,
        config: dict | None = None,
        *,
        stream_mode: str | Sequence[str] = "updates",
        subgraphs: bool = False,
        durability: str | None = None,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        context: Any = None,
        debug: bool | None = None,
    ) -> Iterator[Any]:
        """Yield what `stream_mode` asks for after every step ("values": the state, "updates": each
        node's update, "custom": `get_stream_writer()` payloads, "messages": LLM output from
        `get_message_writer()`, "debug": task and checkpoint events). A list of modes yields
        `(mode, chunk)`; `subgraphs=True` yields `(namespace, chunk)` and includes subgraphs' events.

        `context` reaches the nodes that take a `runtime` argument (`runtime.context`) or call
        `get_runtime()`; `debug=True` (default: `compile(debug=...)`) prints each task, its writes
        and each checkpoint as they happen."""
        run = _Run(self, input, config, stream_mode, subgraphs, durability, interrupt_before, interrupt_after,
                   context, self.debug if debug is None else debug)
        events: queue.SimpleQueue = queue.SimpleQueue()
        run.sink = events.put
        pool: concurrent.futures.ThreadPoolExecutor | None = None
        try:
            run.start()
            yield from _drain(events)
            while (tasks := run.plan()) is not None:
                if len(tasks) == 1 and not run.live:
                    run.finish_task(tasks[0], call_sync(run, tasks[0]))
                else:
                    pool = pool or concurrent.futures.ThreadPoolExecutor(max_workers=min(32, len(tasks)))
                    futures = {pool.submit(contextvars.copy_context().run, call_sync, run, t): t for t in tasks}
                    pending = set(futures)
                    while pending:
                        done, pending = concurrent.futures.wait(pending, timeout=0.01,
                                                                return_when=concurrent.futures.FIRST_COMPLETED)
                        for future in done:
                            run.finish_task(futures[future], future.result())
                        yield from _drain(events)
                yield from _drain(events)
                run.end_step()
                yield from _drain(events)
        finally:
            run.close()
            if pool is not None:
                pool.shutdown(wait=True)
        yield from _drain(events)
        run.raise_if_failed()

    async def astream(
        self,
        input: Any,
        config: dict | None = None,
        *,
        stream_mode: str | Sequence[str] = "updates",
        subgraphs: bool = False,
        durability: str | None = None,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        context: Any = None,
        debug: bool | None = None,
    ) -> AsyncIterator[Any]:
        """`stream` for asyncio: async nodes are awaited, sync nodes run in worker threads."""
        run = _Run(self, input, config, stream_mode, subgraphs, durability, interrupt_before, interrupt_after,
                   context, self.debug if debug is None else debug)
        events: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def sink(item):
            if _in_loop(loop):
                events.put_nowait(item)
            else:
                loop.call_soon_threadsafe(events.put_nowait, item)

        run.sink = sink
        running: dict = {}
        # with durability "sync" a task's writes are stored as it finishes: off the event loop, which
        # may itself hold the database (e.g. a server's task store in the same SQLite file)
        store_now = self.checkpointer is not None and run.persist.durability == "sync"
        try:
            await asyncio.to_thread(run.start) if self.checkpointer else run.start()
            while not events.empty():
                yield events.get_nowait()
            while (tasks := run.plan()) is not None:
                running = {asyncio.ensure_future(call_async(run, t)): t for t in tasks}
                pending = set(running)
                while pending:
                    getter = asyncio.ensure_future(events.get())
                    done, pending = await asyncio.wait(pending | {getter}, return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        yield getter.result()
                    else:
                        getter.cancel()
                    for future in done - {getter}:
                        if store_now:
                            await asyncio.to_thread(run.finish_task, running[future], future.result())
                        else:
                            run.finish_task(running[future], future.result())
                    pending.discard(getter)
                while not events.empty():
                    yield events.get_nowait()
                if self.checkpointer:
                    await asyncio.to_thread(run.end_step)
                else:
                    run.end_step()
                while not events.empty():
                    yield events.get_nowait()
        finally:
            for future in running:  # the run was cancelled or closed early: its nodes stop too
                future.cancel()
            await asyncio.to_thread(run.close) if self.checkpointer else run.close()
        while not events.empty():
            yield events.get_nowait()
        run.raise_if_failed()

    # --- state ----------------------------------------------------------------------------

    def get_state(self, config: dict, *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state at its latest checkpoint (or the one `config` names). With
        `subgraphs=True`, a pending subgraph task carries the subgraph's own snapshot in `state`."""
        saver = self._saver()
        saved = saver.get_tuple(config)
        if saved is None:
            return StateSnapshot({}, (), config, {}, "", None, ())
        return self._snapshot(saved, apply_pending=thread_of(config)[2] is None, subgraphs=subgraphs)

    async def aget_state(self, config: dict, *, subgraphs: bool = False) -> StateSnapshot:
        return await asyncio.to_thread(self.get_state, config, subgraphs=subgraphs)

    def get_state_history(self, config: dict, *, before: dict | None = None, limit: int | None = None) -> Iterator[StateSnapshot]:
        """Every checkpoint of the thread, newest first."""
        for saved in self._saver().list(config, before=before, limit=limit):
            yield self._snapshot(saved, apply_pending=False)

    async def aget_state_history(self, config: dict, **kwargs) -> AsyncIterator[StateSnapshot]:
        for snapshot in await asyncio.to_thread(lambda: list(self.get_state_history(config, **kwargs))):
            yield snapshot

    def update_state(self, config: dict, values: Any, as_node: str | None = None) -> dict:
        """Write `values` into the thread's state as a new checkpoint, through the reducers.

        With `as_node`, the update counts as that node's output: its edges decide what runs next
        (this is how to fork from a past checkpoint). Without it, the pending tasks stay pending.
        """
        saver = self._saver()
        thread_id, ns, _ = thread_of(config)
        saved = saver.get_tuple(config)
        base = saved.checkpoint if saved else Checkpoint(new_checkpoint_id(), -1, {})
        if as_node is not None and as_node not in self.spec.nodes and as_node != START:
            raise InvalidUpdateError(f"Node {as_node} does not exist")
        values_now = dict(base.values)
        writes = update_writes(values.update if isinstance(values, Command) else values)
        if as_node is not None:
            task = Task("update", "pull", as_node, None, ("update",))
            task.writes = routing(self.spec, as_node, values_now, writes, [values] if isinstance(values, Command) else [])
        changed = apply_writes(self.spec.channels, values_now, writes)
        validate_state(self.spec.state_schema, values_now, as_node or "update_state")
        checkpoint = Checkpoint(new_checkpoint_id(), base.step + 1, values_now, list(base.tasks), dict(base.joins),
                                list(base.deferred), dict(base.versions))
        checkpoint.interrupted = base.interrupted or any(c == BREAKPOINT for _, c, _ in (saved.pending_writes if saved else []))
        if as_node is not None:
            next_tasks(self.spec, base, checkpoint, [task])
        for key in changed:
            checkpoint.versions[key] = checkpoint.id
        metadata = {**run_metadata(config), "source": "update", "step": checkpoint.step, "parents": {},
                    "writes": {as_node or "": values}}
        return saver.put(make_config(thread_id, ns, checkpoint.id), checkpoint, metadata, changed,
                         saved.checkpoint.id if saved else None)

    async def aupdate_state(self, config: dict, values: Any, as_node: str | None = None) -> dict:
        return await asyncio.to_thread(self.update_state, config, values, as_node)

    def _saver(self) -> BaseCheckpointSaver:
        if self.checkpointer is None:
            raise ValueError("No checkpointer set: compile(checkpointer=...) to keep state")
        return self.checkpointer

    def _snapshot(self, saved, apply_pending: bool, subgraphs: bool = False) -> StateSnapshot:
        """A checkpoint as the user sees it. The latest state of a thread includes the writes of the
        tasks that finished in a step that did not complete (they will not run again); a past
        checkpoint shows the state before its step, with all its tasks as `next`."""
        checkpoint = saved.checkpoint
        thread_id, ns, _ = thread_of(saved.config)
        tasks = tasks_of(self.spec, checkpoint, ns, {})
        done, errors, interrupts = by_task(saved.pending_writes)
        values = dict(checkpoint.values)
        if apply_pending:
            finished = [t for t in tasks if t.id in done]
            apply_writes(self.spec.channels, values, [w for t in finished for w in done[t.id] if w[0] in self.spec.channels])
        else:
            done = {}
        pregel_tasks = tuple(
            PregelTask(t.id, t.name, t.path, errors.get(t.id), tuple(interrupts.get(t.id, ())),
                       self._subgraph_state(t, thread_id, ns, subgraphs) if t.id not in done else None,
                       update_dict(done[t.id], self.spec.channels) if t.id in done else None)
            for t in tasks
        )
        return StateSnapshot(
            values=output_values(self.spec, values),
            next=tuple(t.name for t in tasks if t.id not in done),
            config=saved.config,
            metadata=saved.metadata,
            created_at=saved.created_at,
            parent_config=saved.parent_config,
            tasks=pregel_tasks,
            interrupts=tuple(i for t in tasks for i in interrupts.get(t.id, ())),
        )

    def _subgraph_state(self, task: Task, thread_id: str, ns: str, expand: bool):
        """A pending subgraph task's state: the config of its checkpoints, or (expand) its snapshot."""
        node = self.spec.nodes.get(task.name)
        if node is None or node.subgraph is None or not node.subgraph.inherit_checkpointer:
            return None
        config = make_config(thread_id, f"{ns}|{task.name}:{task.id}".lstrip("|"), None)
        if not expand:
            return config
        saved = self.checkpointer.get_tuple(config)
        return node.subgraph._snapshot(saved, apply_pending=True, subgraphs=True) if saved is not None else None

    # --- drawing --------------------------------------------------------------------------

    def get_graph(self):
        """The graph's structure, for drawing (`draw_mermaid()`, `draw_svg()`)."""
        from .draw import DrawableGraph

        return DrawableGraph.from_spec(self.spec)


def _final(chunks: Iterator[Any], stream_mode: str) -> Any:
    """invoke's result: the last "values" chunk, with `__interrupt__` when the run paused."""
    latest, updates = None, []
    for mode, chunk in chunks:
        if mode == "values":
            latest = chunk
        elif INTERRUPT not in chunk:
            updates.append(chunk)
    if stream_mode == "updates":
        return updates
    if latest is not None and INTERRUPT in latest:
        latest = {**latest, INTERRUPT: list(latest[INTERRUPT])}
    return latest


def _drain(events: queue.SimpleQueue) -> Iterator[Any]:
    while True:
        try:
            yield events.get_nowait()
        except queue.Empty:
            return


def _in_loop(loop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False

