"""The runtime: a compiled graph executed in Pregel supersteps.

Each step runs its tasks (the nodes triggered by the previous step, and one task per `Send`) on
the state as it was before the step; their writes are buffered and applied together at the
barrier, in task order (triggered nodes by name, then Sends in the order they were sent), through
each key's reducer. Routing (static edges, conditional edges, `Command.goto`) is computed inside
the task, on the state plus the task's own writes, and stored with its writes: a task that
finished is never re-run on resume, because its writes are saved the moment it finishes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import hashlib
import pickle
import queue
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .checkpoint import BaseCheckpointSaver, Checkpoint, make_config, new_checkpoint_id, thread_of
from .graph import GraphSpec, Node
from .state import MISSING, apply_writes, as_input, split_return, update_writes, validate_state
from .types import (
    END,
    START,
    Command,
    EmptyInputError,
    GraphInterrupt,
    GraphRecursionError,
    Interrupt,
    InvalidUpdateError,
    ParentCommand,
    PregelTask,
    RetryPolicy,
    Send,
    StateSnapshot,
)

DEFAULT_RECURSION_LIMIT = 10_007
NEXT, SEND, ERROR, INTERRUPT, RESUME, DONE, BREAKPOINT, NULL_TASK = (
    "__next__", "__send__", "__error__", "__interrupt__", "__resume__", "__done__", "__breakpoint__", "__null__",
)
_ROUTING = (NEXT, SEND)
STREAM_MODES = ("values", "updates", "custom", "messages", "debug", "checkpoints", "tasks")


@dataclass(slots=True)
class Task:
    id: str
    kind: str  # "start", "pull" or "push"
    name: str
    input: Any
    path: tuple
    resume: list = field(default_factory=list)  # values for this task's interrupt() calls, in call order
    writes: list[tuple[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _TaskContext:
    run: _Run
    task: Task
    interrupt_calls: int = 0


_current: contextvars.ContextVar[_TaskContext | None] = contextvars.ContextVar("agentforge_graph_task", default=None)


def interrupt(value: Any) -> Any:
    """Pause the graph and hand `value` to the caller; on resume with `Command(resume=x)` the node
    runs again from the top and this call returns x. Several calls in one node are answered in
    call order. Needs a checkpointer."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("interrupt() can only be called inside a graph node")
    if ctx.run.saver is None:
        raise RuntimeError("interrupt() needs a checkpointer: compile(checkpointer=...)")
    index = ctx.interrupt_calls
    ctx.interrupt_calls += 1
    if index < len(ctx.task.resume):
        return ctx.task.resume[index]
    raise GraphInterrupt([Interrupt(value, _interrupt_id(ctx.task.id, index))])


def get_stream_writer():
    """Inside a node: a function that sends any value to the caller's "custom" stream."""
    ctx = _current.get()
    if ctx is None:
        return lambda chunk: None
    return lambda chunk: ctx.run.emit("custom", chunk)


def get_message_writer():
    """Inside a node: a function that streams LLM output (token deltas, messages) to the caller's
    "messages" stream as `(chunk, metadata)`."""
    ctx = _current.get()
    if ctx is None:
        return lambda chunk: None
    metadata = {"langgraph_step": ctx.run.step, "langgraph_node": ctx.task.name, "langgraph_path": ctx.task.path,
                "checkpoint_ns": ctx.run.ns}
    return lambda chunk: ctx.run.emit("messages", (chunk, metadata))


def _interrupt_id(task_id: str, index: int) -> str:
    return hashlib.blake2b(f"interrupt:{task_id}:{index}".encode(), digest_size=16).hexdigest()


def _task_id(checkpoint_id: str, ns: str, path: tuple) -> str:
    return hashlib.blake2b(repr((checkpoint_id, ns, path)).encode(), digest_size=16).hexdigest()


class CompiledStateGraph:
    """A runnable graph: `invoke`/`stream` (and their async twins), `get_state`, `update_state`."""

    _is_compiled_graph = True

    def __init__(self, spec: GraphSpec, *, checkpointer, cache, interrupt_before, interrupt_after, name, debug) -> None:
        self.spec = spec
        self.checkpointer: BaseCheckpointSaver | None = checkpointer if checkpointer not in (True, False) else None
        self.inherit_checkpointer = checkpointer is None  # a subgraph uses its parent's
        self.cache = cache
        self.interrupt_before = interrupt_before
        self.interrupt_after = interrupt_after
        self.name = name
        self.debug = debug

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
    ) -> Iterator[Any]:
        """Yield what `stream_mode` asks for after every step ("values": the state, "updates": each
        node's update, "custom": `get_stream_writer()` payloads, "messages": LLM output from
        `get_message_writer()`, "debug": task and checkpoint events). A list of modes yields
        `(mode, chunk)`; `subgraphs=True` yields `(namespace, chunk)` and includes subgraphs' events."""
        run = _Run(self, input, config, stream_mode, subgraphs, durability, interrupt_before, interrupt_after)
        events: queue.SimpleQueue = queue.SimpleQueue()
        run.sink = events.put
        pool: concurrent.futures.ThreadPoolExecutor | None = None
        try:
            run.start()
            yield from _drain(events)
            while (tasks := run.plan()) is not None:
                if len(tasks) == 1 and not run.live:
                    run.finish_task(tasks[0], _call_sync(run, tasks[0]))
                else:
                    pool = pool or concurrent.futures.ThreadPoolExecutor(max_workers=min(32, len(tasks)))
                    futures = {pool.submit(contextvars.copy_context().run, _call_sync, run, t): t for t in tasks}
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
    ) -> AsyncIterator[Any]:
        """`stream` for asyncio: async nodes are awaited, sync nodes run in worker threads."""
        run = _Run(self, input, config, stream_mode, subgraphs, durability, interrupt_before, interrupt_after)
        events: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def sink(item):
            if _in_loop(loop):
                events.put_nowait(item)
            else:
                loop.call_soon_threadsafe(events.put_nowait, item)

        run.sink = sink
        try:
            await asyncio.to_thread(run.start) if self.checkpointer else run.start()
            while not events.empty():
                yield events.get_nowait()
            while (tasks := run.plan()) is not None:
                running = {asyncio.ensure_future(_call_async(run, t)): t for t in tasks}
                pending = set(running)
                while pending:
                    getter = asyncio.ensure_future(events.get())
                    done, pending = await asyncio.wait(pending | {getter}, return_when=asyncio.FIRST_COMPLETED)
                    if getter in done:
                        yield getter.result()
                    else:
                        getter.cancel()
                    for future in done - {getter}:
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
            await asyncio.to_thread(run.close) if self.checkpointer else run.close()
        while not events.empty():
            yield events.get_nowait()
        run.raise_if_failed()

    # --- state ----------------------------------------------------------------------------

    def get_state(self, config: dict, *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state at its latest checkpoint (or the one `config` names)."""
        saver = self._saver()
        saved = saver.get_tuple(config)
        if saved is None:
            return StateSnapshot({}, (), config, {}, "", None, ())
        return self._snapshot(saved, apply_pending=thread_of(config)[2] is None)

    async def aget_state(self, config: dict, *, subgraphs: bool = False) -> StateSnapshot:
        return await asyncio.to_thread(self.get_state, config)

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
        task = Task("update", "pull", as_node or "", None, ("update",))
        run = _Run(self, None, config, "values", False, "sync", None, None)
        if as_node is not None:
            routing = run.routing(task, values_now, writes, [values] if isinstance(values, Command) else [])
        changed = apply_writes(self.spec.channels, values_now, writes)
        validate_state(self.spec.state_schema, values_now, as_node or "update_state")
        checkpoint = Checkpoint(new_checkpoint_id(), base.step + 1, values_now, list(base.tasks), dict(base.joins),
                                list(base.deferred), dict(base.versions))
        checkpoint.interrupted = base.interrupted or any(c == BREAKPOINT for _, c, _ in (saved.pending_writes if saved else []))
        if as_node is not None:
            task.writes = routing
            run.checkpoint = base
            run.next_tasks(checkpoint, [task])
        for key in changed:
            checkpoint.versions[key] = checkpoint.id
        metadata = {"source": "update", "step": checkpoint.step, "parents": {}, "writes": {as_node or "": values}}
        return saver.put(make_config(thread_id, ns, checkpoint.id), checkpoint, metadata, changed,
                         saved.checkpoint.id if saved else None)

    async def aupdate_state(self, config: dict, values: Any, as_node: str | None = None) -> dict:
        return await asyncio.to_thread(self.update_state, config, values, as_node)

    def _saver(self) -> BaseCheckpointSaver:
        if self.checkpointer is None:
            raise ValueError("No checkpointer set: compile(checkpointer=...) to keep state")
        return self.checkpointer

    def _snapshot(self, saved, apply_pending: bool) -> StateSnapshot:
        """A checkpoint as the user sees it. The latest state of a thread includes the writes of the
        tasks that finished in a step that did not complete (they will not run again); a past
        checkpoint shows the state before its step, with all its tasks as `next`."""
        checkpoint = saved.checkpoint
        run = _Run(self, None, saved.config, "values", False, "sync", None, None)
        run.checkpoint = checkpoint
        tasks = run.tasks_of(checkpoint)
        done, errors, interrupts = _by_task(saved.pending_writes)
        values = dict(checkpoint.values)
        if apply_pending:
            finished = [t for t in tasks if t.id in done]
            apply_writes(self.spec.channels, values, [w for t in finished for w in done[t.id] if w[0] in self.spec.channels])
        else:
            done = {}
        pregel_tasks = tuple(
            PregelTask(t.id, t.name, t.path, errors.get(t.id), tuple(interrupts.get(t.id, ())),
                       _update_dict(done[t.id], self.spec.channels) if t.id in done else None)
            for t in tasks
        )
        return StateSnapshot(
            values=_output(self.spec, values),
            next=tuple(t.name for t in tasks if t.id not in done),
            config=saved.config,
            metadata=saved.metadata,
            created_at=saved.created_at,
            parent_config=saved.parent_config,
            tasks=pregel_tasks,
            interrupts=tuple(i for t in tasks for i in interrupts.get(t.id, ())),
        )

    # --- drawing --------------------------------------------------------------------------

    def get_graph(self):
        """The graph's structure, for drawing (`draw_mermaid()`, `draw_svg()`)."""
        from .draw import DrawableGraph

        return DrawableGraph.from_spec(self.spec)


_saving_lock = threading.Lock()


class _Saving:
    """Durability "async": checkpoint saves run in order on one background thread, off the
    critical path; `close()` waits for them and raises the first failure."""

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


class _Run:
    """One invocation: loads or creates the checkpoint, plans steps, commits task results."""

    def __init__(self, graph: CompiledStateGraph, input, config, stream_mode, subgraphs, durability,
                 interrupt_before, interrupt_after) -> None:
        self.graph, self.spec = graph, graph.spec
        self.config = dict(config or {})
        self.modes = (stream_mode,) if isinstance(stream_mode, str) else tuple(stream_mode)
        for mode in self.modes:
            if mode not in STREAM_MODES:
                raise ValueError(f"unknown stream_mode {mode!r}; use one of {STREAM_MODES}")
        self.single_mode = isinstance(stream_mode, str)
        self.subgraphs = subgraphs
        self.live = any(m in self.modes for m in ("custom", "messages", "debug", "tasks")) or subgraphs
        self.input = input
        self.durability = durability or self.config.get("durability") or "async"
        if self.durability not in ("sync", "async", "exit"):
            raise ValueError(f"durability must be 'sync', 'async' or 'exit', got {self.durability!r}")
        self.interrupt_before = graph.interrupt_before if interrupt_before is None else interrupt_before
        self.interrupt_after = graph.interrupt_after if interrupt_after is None else interrupt_after
        limit = self.config.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"recursion_limit must be a positive integer, got {limit!r}")
        self.recursion_limit = limit
        parent = _current.get()
        self.parent = parent
        self.forward_to = parent.run if parent is not None and parent.run.subgraphs else None
        self.saver = graph.checkpointer
        self.ns = ""
        if parent is not None and graph.inherit_checkpointer:
            self.saver = parent.run.saver
            self.ns = f"{parent.run.ns}|{parent.task.name}:{parent.task.id}".lstrip("|")
        if self.saver is not None:
            self.thread_id, _, self.checkpoint_id = thread_of(parent.run.config if parent else self.config)
        self.sink = lambda item: None
        self.checkpoint: Checkpoint | None = None
        self.saved_config: dict | None = None
        self.step = 0
        self.stop = 0
        self.done: dict[str, list] = {}  # task id -> its saved writes (finished before, or in this step)
        self.resumes: dict[str, list] = {}
        self.step_tasks: list[Task] = []
        self.failed: list[tuple[Task, BaseException]] = []
        self.interrupts: list[Interrupt] = []
        self.parent_command: ParentCommand | None = None
        self.finished = False
        self.saving: _Saving | None = None  # durability "async": the background writer (outermost run's)
        self.unsaved: tuple | None = None  # durability "exit": the last checkpoint, saved at close
        self.unsaved_writes: list[tuple[str, list]] = []

    # --- events ---------------------------------------------------------------------------

    def emit(self, mode: str, payload: Any) -> None:
        """Send an event to this run's caller and, with subgraphs=True, up to the outermost stream."""
        if mode in self.modes:
            item = payload if self.single_mode else (mode, payload)
            self.sink(((), item) if self.subgraphs and self.forward_to is None else item)
        if self.forward_to is not None:
            self.forward_to.publish(tuple(self.ns.split("|")), mode, payload)

    def wants(self, mode: str) -> bool:
        """Whether anyone listens to `mode` (so its payload is worth building)."""
        return mode in self.modes or (self.forward_to is not None and self.forward_to.wants(mode))

    def publish(self, ns: tuple, mode: str, payload: Any) -> None:
        """A subgraph's event, namespaced, for the outermost stream."""
        if self.forward_to is not None:
            self.forward_to.publish(ns, mode, payload)
        elif mode in self.modes:
            self.sink((ns, payload if self.single_mode else (mode, payload)))

    # --- checkpoints ----------------------------------------------------------------------

    def _config(self, checkpoint_id: str | None) -> dict:
        return make_config(self.thread_id, self.ns, checkpoint_id)

    def start(self) -> None:
        """Load the thread's checkpoint and turn the input into the first step's tasks."""
        saved = None
        if self.saver is not None:
            saved = self.saver.get_tuple(self._config(self.checkpoint_id if not self.parent else None))
            if self.checkpoint_id and saved is None and not self.parent:
                raise ValueError(f"checkpoint {self.checkpoint_id!r} not found in thread {self.thread_id!r}")
        inp = self.input
        resuming = inp is None or isinstance(inp, Command)
        if saved is not None:
            self.checkpoint = saved.checkpoint
            self.saved_config = saved.config
            replay = self.checkpoint_id is not None and inp is None and not self.parent
            if replay:  # a new branch starts with a copy of the replayed checkpoint
                fork = _copy(saved.checkpoint)
                fork.id, fork.step = new_checkpoint_id(), fork.step + 1
                self._save(fork, {"source": "fork", "step": fork.step, "parents": {}}, set(), saved.checkpoint.id)
                self.checkpoint = fork
            elif resuming:
                self.done, _, _ = _by_task(saved.pending_writes)
                self.resumes = {tid: [v for c, v in ws if c == RESUME] for tid, ws in _writes_by_task(saved.pending_writes).items()}
                if any(c == BREAKPOINT for _, c, _ in saved.pending_writes):
                    self.checkpoint.interrupted = True
        if isinstance(inp, Command):
            if inp.graph is not None:
                raise InvalidUpdateError("a Command passed as input cannot target a parent graph")
            if inp.resume is not None:
                if self.saver is None:
                    raise RuntimeError("Cannot use Command(resume=...) without checkpointer")
                self._resume(inp.resume, saved)
            if inp.update is not None or inp.goto:
                self._input_command(inp)
            if inp.resume is None and inp.update is None and not inp.goto:
                raise EmptyInputError("Received an empty Command input")
        elif inp is None:
            if self.checkpoint is None:
                raise EmptyInputError("Received no input for __start__")
        else:
            base = self.checkpoint or Checkpoint(new_checkpoint_id(), -2, _initial_values(self.spec))
            self.checkpoint = Checkpoint(new_checkpoint_id(), base.step + 1, dict(base.values),
                                         [("start", START, inp)], {}, [], dict(base.versions))
            self.done, self.resumes = {}, {}
            self._save(self.checkpoint, {"source": "input", "step": self.checkpoint.step, "parents": {},
                                          "writes": {START: inp}}, set(), base.id if saved else None)
        if resuming:
            self.emit("values", _output(self.spec, self.checkpoint.values))
        self.step = self.checkpoint.step + 1
        self.stop = self.step + self.recursion_limit  # every superstep counts, the input's included

    def _resume(self, resume: Any, saved) -> None:
        if saved is None:
            raise EmptyInputError("there is nothing to resume in this thread")
        _, _, interrupts = _by_task(saved.pending_writes)
        pending = {i.id: task_id for task_id, items in interrupts.items() for i in items}
        if isinstance(resume, dict) and resume and all(k in pending for k in resume):
            targets = [(pending[k], v) for k, v in resume.items()]
        elif len(pending) <= 1 or len(set(pending.values())) == 1:
            if not pending:
                raise RuntimeError("there is no pending interrupt to resume")
            targets = [(next(iter(pending.values())), resume)]
        else:
            raise RuntimeError(
                "When there are multiple pending interrupts, you must specify the interrupt id when resuming. "
                "Docs: https://docs.langchain.com/oss/python/langgraph/add-human-in-the-loop#resume-multiple-interrupts-with-one-invocation."
            )
        for task_id, value in targets:
            self.resumes.setdefault(task_id, []).append(value)
            self._save_writes(task_id, [(RESUME, value)])

    def _input_command(self, command: Command) -> None:
        """`Command(update=..., goto=...)` as input: edit the state before the pending tasks run."""
        if self.checkpoint is None:
            raise EmptyInputError("Command(update/goto) needs a thread with state")
        writes = update_writes(command.update)
        apply_writes(self.spec.channels, self.checkpoint.values, writes)
        self._save_writes(NULL_TASK, writes)
        for target in _gotos(command.goto):
            spec = ("push", target.node, target.arg) if isinstance(target, Send) else ("pull", target, None)
            if spec not in self.checkpoint.tasks:
                self.checkpoint.tasks.append(spec)

    def _save(self, checkpoint: Checkpoint, metadata: dict, changed: set[str], parent_id: str | None) -> None:
        if self.saver is None:
            return
        config = self._config(checkpoint.id)
        if self.durability == "exit":
            if self.unsaved is not None:  # keep the channels changed since the last stored checkpoint
                changed = changed | self.unsaved[3]
                parent_id = self.unsaved[4]
            self.unsaved = (config, checkpoint, metadata, changed, parent_id)
            self.unsaved_writes = []
            return
        self._submit(self.saver.put, config, _copy(checkpoint), metadata, changed, parent_id)

    def _save_writes(self, task_id: str, writes: list[tuple[str, Any]]) -> None:
        if self.saver is None or self.checkpoint is None:
            return
        if self.durability == "exit":  # kept for close(): they matter only if the run stops mid-step
            self.unsaved_writes.append((task_id, list(writes)))
            return
        self._submit(self.saver.put_writes, self._config(self.checkpoint.id), list(writes), task_id)

    def _submit(self, fn, *args) -> None:
        if self.durability == "sync":
            fn(*args)
            return
        root = self
        while root.parent is not None and root.parent.run.saver is self.saver:
            root = root.parent.run  # subgraphs share the outermost run's writer
        with _saving_lock:
            if root.saving is None:
                root.saving = _Saving()
        root.saving.submit(fn, args)

    def close(self) -> None:
        """Wait for background saves; with durability "exit", store the final checkpoint now."""
        if self.saving is not None:
            self.saving.close()
        if self.saver is not None and self.durability == "exit":
            if self.unsaved is not None:
                self.saver.put(*self.unsaved)
            for task_id, writes in self.unsaved_writes:
                self.saver.put_writes(self._config(self.checkpoint.id), writes, task_id)

    # --- planning -------------------------------------------------------------------------

    def tasks_of(self, checkpoint: Checkpoint) -> list[Task]:
        tasks = []
        for i, (kind, name, arg) in enumerate(checkpoint.tasks):
            path = (kind, name) if kind != "push" else (kind, i, name)
            task = Task(_task_id(checkpoint.id, self.ns, path), kind, name, arg, path)
            if kind == "pull":
                node = self.spec.nodes.get(name)
                if node is not None and node.input_schema is not None:
                    values = {k: v for k, v in checkpoint.values.items() if k in node.input_keys}
                    task.input = as_input(node.input_schema, values)
                else:
                    task.input = as_input(self.spec.state_schema, checkpoint.values)
            task.resume = list(self.resumes.get(task.id, ()))
            tasks.append(task)
        return tasks

    def plan(self) -> list[Task] | None:
        """The tasks of the next step that still have to run, or None when the run is over."""
        if self.finished or self.failed or self.interrupts or self.parent_command:
            return None
        checkpoint = self.checkpoint
        if not checkpoint.tasks:
            self.finished = True
            return None
        if self.step >= self.stop:
            raise GraphRecursionError(
                f"Recursion limit of {self.recursion_limit} reached without hitting a stop condition. "
                "You can increase the limit by setting the `recursion_limit` config key."
            )
        self.step_tasks = self.tasks_of(checkpoint)
        if self._breakpoint(self.interrupt_before, self.step_tasks) and not checkpoint.interrupted:
            if self.saver is None:
                raise RuntimeError("interrupt_before needs a checkpointer")
            self._save_writes(BREAKPOINT, [(BREAKPOINT, True)])
            self.interrupts.append(None)
            self.emit("updates", {INTERRUPT: ()})
            return None
        for task in self.step_tasks:
            if task.id in self.done:
                task.writes = self.done[task.id]
        todo = [t for t in self.step_tasks if t.id not in self.done]
        for task in todo if self.wants("debug") or self.wants("tasks") else ():
            if task.kind == "start":
                continue
            event = {"id": task.id, "name": task.name, "input": task.input, "triggers": task.path}
            self.emit("debug", {"type": "task", "step": self.step, "timestamp": _now(), "payload": event})
            self.emit("tasks", event)
        return todo

    def _breakpoint(self, names, tasks: list[Task]) -> bool:
        if not names:
            return False
        return any(t.kind != "start" and (names == "*" or t.name in names) for t in tasks)

    # --- executing ------------------------------------------------------------------------

    def node_writes(self, task: Task, value: Any) -> list[tuple[str, Any]]:
        """A node's return value as writes: its state update plus where to go next."""
        writes, commands = split_return(value)
        for command in commands:
            if command.graph == Command.PARENT:
                raise ParentCommand(Command(graph=None, update=command.update, goto=command.goto))
            if command.graph is not None:
                raise InvalidUpdateError(f"unknown Command graph {command.graph!r}")
            if command.resume is not None:
                raise InvalidUpdateError("a node cannot return Command(resume=...)")
        return writes + self.routing(task, self.checkpoint.values, writes, commands)

    def routing(self, task: Task, values: dict, writes: list, commands: list[Command]) -> list[tuple[str, Any]]:
        """Where a task goes next: static edges, then conditional edges (evaluated on the state with
        the task's own writes applied), then `Command.goto` targets."""
        out = [(NEXT, target) for target in self.spec.edges.get(task.name, ()) if target != END]
        branches = self.spec.branches.get(task.name, ())
        if branches:
            local = dict(values)
            apply_writes(self.spec.channels, local, writes)
            state = as_input(self.spec.state_schema, local)
            for branch in branches:
                result = branch.path(state)
                if asyncio.iscoroutine(result):
                    result = _run_coroutine(result)
                out += self._targets(result, branch.path_map)
        for command in commands:
            out += self._targets(command.goto, None)
        return out

    def _targets(self, result: Any, path_map: dict | None) -> list[tuple[str, Any]]:
        out = []
        for item in _gotos(result):
            if isinstance(item, Send):
                if item.node not in self.spec.nodes:
                    raise InvalidUpdateError(f"Invalid node name '{item.node}' in Send")
                out.append((SEND, item))
                continue
            if path_map is not None:
                if item not in path_map:
                    raise InvalidUpdateError(f"conditional edge returned {item!r}, which is not in its path_map")
                item = path_map[item]
            if item == END:
                continue
            if item not in self.spec.nodes:
                raise InvalidUpdateError(f"conditional edge or Command.goto returned unknown node {item!r}")
            out.append((NEXT, item))
        return out

    def finish_task(self, task: Task, outcome: tuple[str, Any]) -> None:
        """Record one task's outcome the moment it is known: save its writes, stream its update."""
        kind, value = outcome
        if kind == "ok":
            task.writes = value
            self.done[task.id] = value
            self._save_writes(task.id, value or [(DONE, None)])
            if task.kind != "start" and self.wants("updates"):
                self.emit("updates", {task.name: _update_dict(value, self.spec.channels)})
            if task.kind != "start" and self.wants("debug"):
                self.emit("debug", {"type": "task_result", "step": self.step, "timestamp": _now(),
                                    "payload": {"id": task.id, "name": task.name, "result": value}})
        elif kind == "interrupt":
            self.interrupts += value.interrupts
            self._save_writes(task.id, [(INTERRUPT, list(value.interrupts))])
        elif kind == "parent":
            self.parent_command = value
        else:
            self.failed.append((task, value))
            self._save_writes(task.id, [(ERROR, _picklable_error(value))])

    def end_step(self) -> None:
        """The barrier: apply the step's writes in task order, save the new checkpoint, route on."""
        if self.failed or self.parent_command:
            return
        if self.interrupts:
            interrupts = tuple(i for i in self.interrupts if i is not None)
            self.emit("updates", {INTERRUPT: interrupts})
            self.emit("values", {**_output(self.spec, self.checkpoint.values), INTERRUPT: interrupts})
            return
        tasks = self.step_tasks
        values = dict(self.checkpoint.values)
        state_writes = [w for t in tasks for w in t.writes if w[0] not in _ROUTING and w[0] != DONE]
        changed = apply_writes(self.spec.channels, values, state_writes)
        validate_state(self.spec.state_schema, values, ", ".join(t.name for t in tasks))
        checkpoint = Checkpoint(new_checkpoint_id(), self.step, values, [], {}, [], dict(self.checkpoint.versions))
        for key in changed:
            checkpoint.versions[key] = checkpoint.id
        self.next_tasks(checkpoint, tasks)
        metadata = {"source": "loop", "step": self.step, "parents": {},
                    "writes": {t.name: _update_dict(t.writes, self.spec.channels) for t in tasks if t.kind != "start"}}
        parent_id = self.checkpoint.id
        self.checkpoint, self.done, self.resumes = checkpoint, {}, {}
        self._save(checkpoint, metadata, changed, parent_id)
        if self.wants("values"):
            self.emit("values", _output(self.spec, values))
        if self.wants("checkpoints"):
            self.emit("checkpoints", {"config": self._config(checkpoint.id) if self.saver else None,
                                      "values": _output(self.spec, values), "metadata": metadata,
                                      "next": [n for _, n, _ in checkpoint.tasks]})
        if self.wants("debug"):
            self.emit("debug", {"type": "checkpoint", "step": self.step, "timestamp": _now(), "payload": {
                "values": _output(self.spec, values), "next": [n for _, n, _ in checkpoint.tasks]}})
        self.step += 1
        if self._breakpoint(self.interrupt_after, tasks):
            if self.saver is None:
                raise RuntimeError("interrupt_after needs a checkpointer")
            if checkpoint.tasks:
                self.interrupts.append(None)
                self.emit("updates", {INTERRUPT: ()})

    def next_tasks(self, checkpoint: Checkpoint, tasks: list[Task]) -> None:
        """Fill `checkpoint`'s tasks from the routing writes of `tasks` (joins and deferred nodes included)."""
        pulls: set[str] = set()
        sends: list[Send] = []
        joins = {k: list(v) for k, v in self.checkpoint.joins.items()} if self.checkpoint else {}
        for task in tasks:
            for channel, value in task.writes:
                if channel == NEXT:
                    pulls.add(value)
                elif channel == SEND:
                    sends.append(value)
            for sources, target in self.spec.joins:
                if task.name in sources:
                    seen = joins.setdefault(f"{'+'.join(sources)}:{target}", [])
                    if task.name not in seen:
                        seen.append(task.name)
        for sources, target in self.spec.joins:
            key = f"{'+'.join(sources)}:{target}"
            if set(joins.get(key, ())) >= set(sources):
                pulls.add(target)
                del joins[key]
        pulls.discard(END)
        deferred = set(self.checkpoint.deferred if self.checkpoint else ())
        for name in list(pulls):
            if name in self.spec.nodes and self.spec.nodes[name].defer:
                deferred.add(name)
                pulls.discard(name)
        if not pulls and not sends and deferred:
            pulls, deferred = deferred, set()
        checkpoint.tasks = [("pull", n, None) for n in sorted(pulls)] + [("push", s.node, s.arg) for s in sends]
        checkpoint.joins = joins
        checkpoint.deferred = sorted(deferred)

    def raise_if_failed(self) -> None:
        if self.failed:
            task, exc = self.failed[0]
            raise exc
        if self.parent_command is not None:
            raise self.parent_command


def _call_sync(run: _Run, task: Task) -> tuple[str, Any]:
    """Run one task (with its retry policy) in this thread; never raises."""
    token = _current.set(_TaskContext(run, task))
    try:
        return "ok", _execute(run, task, sync=True)
    except GraphInterrupt as exc:
        return "interrupt", exc
    except ParentCommand as exc:
        return _parent_command(run, task, exc)
    except Exception as exc:
        _note(exc, task)
        return "error", exc
    finally:
        _current.reset(token)


async def _call_async(run: _Run, task: Task) -> tuple[str, Any]:
    node = run.spec.nodes.get(task.name)
    if task.kind == "start" or node is None or not (node.is_async or node.subgraph is not None):
        return await asyncio.to_thread(contextvars.copy_context().run, _call_sync, run, task)
    token = _current.set(_TaskContext(run, task))
    try:
        return "ok", await _execute_async(run, task, node)
    except GraphInterrupt as exc:
        return "interrupt", exc
    except ParentCommand as exc:
        return _parent_command(run, task, exc)
    except Exception as exc:
        _note(exc, task)
        return "error", exc
    finally:
        _current.reset(token)


def _parent_command(run: _Run, task: Task, exc: ParentCommand) -> tuple[str, Any]:
    """A subgraph's `Command(graph=PARENT)` reached this task: it becomes this task's own output."""
    if run.parent is None:
        return "error", InvalidUpdateError("There is no parent graph")
    return "parent", exc


def _execute(run: _Run, task: Task, sync: bool) -> list[tuple[str, Any]]:
    if task.kind == "start":
        return _start_writes(run, task)
    node = run.spec.nodes[task.name]
    value = _cached(run, node, task, lambda: _with_retries(node, lambda: _invoke_node(run, node, task)))
    return run.node_writes(task, value)


async def _execute_async(run: _Run, task: Task, node: Node) -> list[tuple[str, Any]]:
    async def call():
        if node.subgraph is not None:
            return await _subgraph_async(run, node, task)
        return await (node.action(task.input, config=run.config) if node.wants_config else node.action(task.input))

    attempts = 0
    while True:
        attempts += 1
        try:
            value = await call()
            break
        except (GraphInterrupt, ParentCommand):
            raise
        except Exception as exc:
            policy = _policy(node, exc)
            if policy is None or attempts >= policy.max_attempts:
                raise
            await asyncio.sleep(policy.wait(attempts))
    return run.node_writes(task, value)


def _invoke_node(run: _Run, node: Node, task: Task) -> Any:
    if node.subgraph is not None:
        return _subgraph_sync(run, node, task)
    result = node.action(task.input, config=run.config) if node.wants_config else node.action(task.input)
    if asyncio.iscoroutine(result):
        result = _run_coroutine(result)
    return result


def _subgraph_sync(run: _Run, node: Node, task: Task) -> Any:
    """Run a compiled graph as this node: the parent's state in, the shared keys of its final state out.
    An interrupt inside pauses the parent; the parent's resume value resumes the subgraph."""
    final = None
    try:
        for item in node.subgraph.stream(_subgraph_input(run, task), run.config, stream_mode=["values", "updates"],
                                         subgraphs=run.subgraphs, durability=run.durability):
            final = _subgraph_event(item, final)
    except ParentCommand as command:  # Command(graph=PARENT): the parent applies it as this node's output
        return command.command
    return _subgraph_output(run, final)


async def _subgraph_async(run: _Run, node: Node, task: Task) -> Any:
    final = None
    try:
        async for item in node.subgraph.astream(_subgraph_input(run, task), run.config,
                                                stream_mode=["values", "updates"], subgraphs=run.subgraphs,
                                                durability=run.durability):
            final = _subgraph_event(item, final)
    except ParentCommand as command:
        return command.command
    return _subgraph_output(run, final)


def _subgraph_event(item: Any, final: Any) -> Any:
    """Track a subgraph's final state; re-raise its interrupts. (With subgraphs=True its other
    events already went to the parent's stream.)"""
    if not (isinstance(item, tuple) and len(item) == 2 and item[0] in ("values", "updates")):
        return final
    mode, chunk = item
    if mode == "values":
        return chunk
    if INTERRUPT in chunk and chunk[INTERRUPT]:
        raise GraphInterrupt(chunk[INTERRUPT])
    return final


def _subgraph_input(run: _Run, task: Task) -> Any:
    if task.resume:  # the parent resumes: the subgraph continues from its own checkpoint
        return Command(resume=task.resume[-1])
    if task.kind == "push":
        return task.input
    return dict(run.checkpoint.values)


def _subgraph_output(run: _Run, final: Any) -> Any:
    if final is None:
        return None
    return {k: v for k, v in final.items() if k in run.spec.channels}


def _start_writes(run: _Run, task: Task) -> list[tuple[str, Any]]:
    inp = task.input
    writes = [(k, v) for k, v in update_writes(inp) if k in run.spec.input_keys]
    if not writes and not isinstance(inp, dict):
        raise InvalidUpdateError(f"Expected dict as graph input, got {inp!r}")
    return writes + run.routing(task, run.checkpoint.values, writes, [])


def _with_retries(node: Node, call):
    attempts = 0
    while True:
        attempts += 1
        try:
            return call()
        except (GraphInterrupt, ParentCommand):
            raise
        except Exception as exc:
            policy = _policy(node, exc)
            if policy is None or attempts >= policy.max_attempts:
                raise
            time.sleep(policy.wait(attempts))


def _policy(node: Node, exc: Exception) -> RetryPolicy | None:
    """The first of the node's retry policies that retries this exception."""
    policies = node.retry_policy if isinstance(node.retry_policy, (list, tuple)) else [node.retry_policy]
    return next((p for p in policies if p is not None and p.should_retry(exc)), None)


def _cached(run: _Run, node: Node, task: Task, compute):
    if node.cache_policy is None or run.graph.cache is None:
        return compute()
    key_func = node.cache_policy.key_func or (lambda value: pickle.dumps(value))
    key = (run.ns, node.name, key_func(task.input))
    hit = run.graph.cache.get(key)
    if hit is not MISSING:
        return hit
    value = compute()
    run.graph.cache.set(key, value, node.cache_policy.ttl)
    return value


def _run_coroutine(coro):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    raise RuntimeError("an async node or router cannot run inside a sync invoke() called from an event loop; use ainvoke()")


def _note(exc: Exception, task: Task) -> None:
    if hasattr(exc, "add_note") and task.kind != "start":
        note = f"During task with name '{task.name}' and id '{task.id}'"
        if note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)


def _picklable_error(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _gotos(result: Any) -> list:
    if result is None or result == ():
        return []
    if isinstance(result, (str, Send)):
        return [result]
    if isinstance(result, (list, tuple)):
        return list(result)
    return [result]


def _writes_by_task(pending: list[tuple[str, str, Any]]) -> dict[str, list[tuple[str, Any]]]:
    by_task: dict[str, list[tuple[str, Any]]] = {}
    for task_id, channel, value in pending:
        by_task.setdefault(task_id, []).append((channel, value))
    return by_task


def _by_task(pending: list[tuple[str, str, Any]]) -> tuple[dict[str, list], dict[str, BaseException], dict[str, list[Interrupt]]]:
    """Split saved pending writes into finished tasks' writes, errors and interrupts (by task id)."""
    done, errors, interrupts = {}, {}, {}
    for task_id, writes in _writes_by_task(pending).items():
        if task_id in (BREAKPOINT, NULL_TASK):
            continue
        outcome = [(c, v) for c, v in writes if c in (ERROR, INTERRUPT)]
        results = [(c, v) for c, v in writes if c not in (ERROR, INTERRUPT, RESUME)]
        if results:  # it finished (after any interrupts it had)
            done[task_id] = [(c, v) for c, v in results if c != DONE]
        elif outcome and outcome[-1][0] == ERROR:
            errors[task_id] = outcome[-1][1]
        elif outcome and writes[-1][0] == INTERRUPT:  # its latest interrupt is not answered yet
            interrupts[task_id] = list(outcome[-1][1])
    return done, errors, interrupts


def _update_dict(writes: list[tuple[str, Any]], channels: dict) -> dict | None:
    """A task's state writes as the `updates` stream shows them: {key: value}, or a list of values
    for a key written several times."""
    grouped: dict[str, list] = {}
    for key, value in writes:
        if key in channels:
            grouped.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()} or None


def _initial_values(spec: GraphSpec) -> dict:
    """A new thread's state: reducer keys whose type builds empty (a list, a dict) start empty."""
    return {k: type(c.initial)() for k, c in spec.channels.items() if c.initial is not MISSING}


def _output(spec: GraphSpec, values: dict) -> dict:
    keys = spec.output_key_set
    return {k: v for k, v in values.items() if k in keys and v is not MISSING}


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


def _copy(checkpoint: Checkpoint) -> Checkpoint:
    return Checkpoint(checkpoint.id, checkpoint.step, dict(checkpoint.values), list(checkpoint.tasks),
                      {k: list(v) for k, v in checkpoint.joins.items()}, list(checkpoint.deferred),
                      dict(checkpoint.versions), checkpoint.interrupted)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
