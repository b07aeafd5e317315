"""The run loop: one invocation of a compiled graph, superstep by superstep.

`_Run` loads or creates the thread's checkpoint, plans each step's tasks, records each task's
outcome the moment it is known (saved writes: a finished task never runs again on resume), and
at the barrier applies the step's writes in task order, saves the new checkpoint and routes on.
Executing the tasks is `tasks.py`'s job; the step algebra is `algo.py`'s; saving is `saving.py`'s.
"""

from __future__ import annotations

import pprint
import warnings
from dataclasses import is_dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .algo import (
    BREAKPOINT,
    DONE,
    ERROR,
    INTERRUPT,
    NULL_TASK,
    RESUME,
    ROUTING,
    Task,
    by_task,
    copy_checkpoint,
    gotos,
    initial_values,
    next_tasks,
    now,
    output_values,
    picklable_error,
    tasks_of,
    update_dict,
    writes_by_task,
)
from .checkpoint import Checkpoint, new_checkpoint_id, thread_of
from .runtime import _current
from .saving import Persistence, run_metadata
from .state import apply_writes, update_writes, validate_state
from .types import (
    START,
    Command,
    EmptyInputError,
    GraphRecursionError,
    Interrupt,
    InvalidUpdateError,
    ParentCommand,
    Send,
)

if TYPE_CHECKING:
    from .pregel import CompiledStateGraph

DEFAULT_RECURSION_LIMIT = 10_007
STREAM_MODES = ("values", "updates", "custom", "messages", "debug", "checkpoints", "tasks")


class _Run:
    """One invocation: loads or creates the checkpoint, plans steps, commits task results."""

    def __init__(self, graph: CompiledStateGraph, input, config, stream_mode, subgraphs=False, durability=None,
                 interrupt_before=None, interrupt_after=None, context=None, debug=False) -> None:
        self.graph, self.spec = graph, graph.spec
        self.config = dict(config or {})
        self.modes = (stream_mode,) if isinstance(stream_mode, str) else tuple(stream_mode)
        for mode in self.modes:
            if mode not in STREAM_MODES:
                raise ValueError(f"unknown stream_mode {mode!r}; use one of {STREAM_MODES}")
        self.single_mode = isinstance(stream_mode, str)
        self.subgraphs = subgraphs
        self.debug = debug  # print tasks, results and checkpoints as they happen (LangGraph's debug=True)
        self.live = any(m in self.modes for m in ("custom", "messages", "debug", "tasks")) or subgraphs
        self.input = input
        self.context = _coerce_context(self.spec.context_schema, context)
        self.interrupt_before = graph.interrupt_before if interrupt_before is None else interrupt_before
        self.interrupt_after = graph.interrupt_after if interrupt_after is None else interrupt_after
        limit = self.config.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        if not isinstance(limit, int) or limit < 1:
            raise ValueError(f"recursion_limit must be a positive integer, got {limit!r}")
        self.recursion_limit = limit
        parent = _current.get()
        self.parent = parent
        self.forward_to = parent.run if parent is not None and parent.run.subgraphs else None
        saver, ns = graph.checkpointer, ""
        if parent is not None and graph.inherit_checkpointer:
            saver, ns = parent.run.saver, f"{parent.run.ns}|{parent.task.name}:{parent.task.id}".lstrip("|")
        self.saver, self.ns = saver, ns
        self.store = graph.store if graph.store is not None or parent is None else parent.run.store
        thread_id = self.checkpoint_id = None
        if saver is not None:
            thread_id, _, self.checkpoint_id = thread_of(parent.run.config if parent else self.config)
        self.persist = Persistence(saver, durability or self.config.get("durability") or "async", thread_id, ns,
                                   parent.run.persist if parent is not None else None,
                                   run_metadata(self.config))
        self.sink = lambda item: None
        # observers (config["observers"], a subgraph shares its parent's) see events where they happen
        self.observers = tuple(self.config.get("observers") or (parent.run.observers if parent is not None else ()))
        self.observed: dict[str, tuple] = {}  # mode -> the `on_event` of each observer that sees it
        for observer in self.observers:
            for mode in getattr(observer, "modes", ()):
                self.observed[mode] = (*self.observed.get(mode, ()), observer.on_event)
        # the "tasks" events as arguments, for observers that follow every task (no event dicts built)
        self.task_starts = tuple(o.on_task_start for o in self.observers if hasattr(o, "on_task_start"))
        self.task_results = tuple(o.on_task_result for o in self.observers if hasattr(o, "on_task_result"))
        self.wanted = frozenset((*self.modes, *self.observed, *(("debug",) if debug else ()),
                                 *(self.forward_to.wanted if self.forward_to is not None else ())))
        self.ns_path = tuple(ns.split("|")) if ns else ()
        self.checkpoint: Checkpoint | None = None
        self.step = 0
        self.stop = 0
        self.done: dict[str, list] = {}  # task id -> its saved writes (finished before, or in this step)
        self.resumes: dict[str, list] = {}
        self.step_tasks: list[Task] = []
        self.failed: list[tuple[Task, BaseException]] = []
        self.interrupts: list[Interrupt] = []
        self.interrupt_rank: dict[str, int] = {}
        self.parent_command: ParentCommand | None = None
        self.finished = False

    # --- events ---------------------------------------------------------------------------

    def emit(self, mode: str, payload: Any) -> None:
        """Send an event to this run's caller and, with subgraphs=True, up to the outermost stream."""
        for on_event in self.observed.get(mode, ()):
            try:
                on_event(self.ns_path, mode, payload)
            except Exception as exc:
                _observer_failed(on_event, exc)
        if mode in self.modes:
            if self.subgraphs and self.forward_to is None:  # LangGraph's (namespace, [mode,] chunk)
                self.sink(((), payload) if self.single_mode else ((), mode, payload))
            else:
                self.sink(payload if self.single_mode else (mode, payload))
        if self.forward_to is not None:
            self.forward_to.publish(tuple(self.ns.split("|")), mode, payload)
        if mode == "debug" and self.debug:
            _print_debug(payload)

    def tell_result(self, task: Task, error: BaseException | None, result: Any, interrupts: tuple) -> None:
        """A task's result, for observers' `on_task_result` hooks."""
        for hook in self.task_results:
            try:
                hook(self.ns_path, task.id, task.name, error, result, interrupts)
            except Exception as exc:
                _observer_failed(hook, exc)

    def wants(self, mode: str) -> bool:
        """Whether anyone listens to `mode` (so its payload is worth building)."""
        return mode in self.wanted

    def publish(self, ns: tuple, mode: str, payload: Any) -> None:
        """A subgraph's event, namespaced, for the outermost stream."""
        if self.forward_to is not None:
            self.forward_to.publish(ns, mode, payload)
        elif mode in self.modes:
            self.sink((ns, payload) if self.single_mode else (ns, mode, payload))

    # --- starting -------------------------------------------------------------------------

    def start(self) -> None:
        """Load the thread's checkpoint and turn the input into the first step's tasks."""
        saved = None
        if self.saver is not None:
            saved = self.saver.get_tuple(self.persist.config(self.checkpoint_id if not self.parent else None))
            if self.checkpoint_id and saved is None and not self.parent:
                raise ValueError(f"checkpoint {self.checkpoint_id!r} not found in thread {self.persist.thread_id!r}")
        inp = self.input
        resuming = inp is None or isinstance(inp, Command)
        if saved is not None:
            self.checkpoint = saved.checkpoint
            replay = self.checkpoint_id is not None and inp is None and not self.parent
            if replay:  # a new branch starts with a copy of the replayed checkpoint
                fork = copy_checkpoint(saved.checkpoint)
                fork.id, fork.step = new_checkpoint_id(), fork.step + 1
                self.persist.save(fork, {"source": "fork", "step": fork.step, "parents": {}}, set(), saved.checkpoint.id)
                self.checkpoint = fork
            elif resuming:
                self.done, _, _ = by_task(saved.pending_writes)
                self.resumes = {tid: [v for c, v in ws if c == RESUME] for tid, ws in writes_by_task(saved.pending_writes).items()}
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
            base = self.checkpoint or Checkpoint(new_checkpoint_id(), -2, initial_values(self.spec))
            self.checkpoint = Checkpoint(new_checkpoint_id(), base.step + 1, dict(base.values),
                                         [("start", START, inp)], {}, [], dict(base.versions))
            self.done, self.resumes = {}, {}
            self.persist.save(self.checkpoint, {"source": "input", "step": self.checkpoint.step, "parents": {},
                                                "writes": {START: inp}}, set(), base.id if saved else None)
        if resuming:
            self.emit("values", output_values(self.spec, self.checkpoint.values))
        self.step = self.checkpoint.step + 1
        self.stop = self.step + self.recursion_limit  # every superstep counts, the input's included

    def _resume(self, resume: Any, saved) -> None:
        if saved is None:
            raise EmptyInputError("there is nothing to resume in this thread")
        _, _, interrupts = by_task(saved.pending_writes)
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
            self.save_writes(task_id, [(RESUME, value)])

    def _input_command(self, command: Command) -> None:
        """`Command(update=..., goto=...)` as input: edit the state before the pending tasks run."""
        if self.checkpoint is None:
            raise EmptyInputError("Command(update/goto) needs a thread with state")
        writes = update_writes(command.update)
        apply_writes(self.spec.channels, self.checkpoint.values, writes)
        self.save_writes(NULL_TASK, writes)
        for target in gotos(command.goto):
            spec = ("push", target.node, target.arg) if isinstance(target, Send) else ("pull", target, None)
            if spec not in self.checkpoint.tasks:
                self.checkpoint.tasks.append(spec)

    def save_writes(self, task_id: str, writes: list[tuple[str, Any]]) -> None:
        if self.checkpoint is not None:
            self.persist.save_writes(self.checkpoint.id, task_id, writes)

    def close(self) -> None:
        self.persist.close()

    # --- planning -------------------------------------------------------------------------

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
        self.step_tasks = tasks_of(self.spec, checkpoint, self.ns, self.resumes, self.stop - self.step)
        if self._breakpoint(self.interrupt_before, self.step_tasks) and not checkpoint.interrupted:
            if self.saver is None:
                raise RuntimeError("interrupt_before needs a checkpointer")
            self.save_writes(BREAKPOINT, [(BREAKPOINT, True)])
            self.interrupts.append(None)
            self.emit("updates", {INTERRUPT: ()})
            return None
        for task in self.step_tasks:
            if task.id in self.done:
                task.writes = self.done[task.id]
        todo = [t for t in self.step_tasks if t.id not in self.done]
        debug, tasks, starts = self.wants("debug"), self.wants("tasks"), self.task_starts
        for task in todo if debug or tasks or starts else ():
            if task.kind == "start":
                continue
            for hook in starts:
                try:
                    hook(self.ns_path, task.id, task.name, task.input, task.path)
                except Exception as exc:
                    _observer_failed(hook, exc)
            if not (debug or tasks):
                continue
            event = {"id": task.id, "name": task.name, "input": task.input, "triggers": task.path}
            if debug:
                self.emit("debug", {"type": "task", "step": self.step, "timestamp": now(), "payload": event})
            if tasks:
                self.emit("tasks", event)
        return todo

    @staticmethod
    def _breakpoint(names, tasks: list[Task]) -> bool:
        if not names:
            return False
        return any(t.kind != "start" and (names == "*" or t.name in names) for t in tasks)

    # --- committing -----------------------------------------------------------------------

    def finish_task(self, task: Task, outcome: tuple[str, Any]) -> None:
        """Record one task's outcome the moment it is known: save its writes, stream its update."""
        kind, value = outcome
        if kind == "ok":
            task.writes = value
            self.done[task.id] = value
            self.save_writes(task.id, value or [(DONE, None)])
            wanted, results = (self.wanted, self.task_results) if task.kind != "start" else ((), ())
            if "updates" in wanted or "tasks" in wanted or results:
                update = update_dict(value, self.spec.channels)
                if results:
                    self.tell_result(task, None, update, ())
                if "updates" in wanted:
                    self.emit("updates", {task.name: update})
                if "tasks" in wanted:
                    self.emit("tasks", {"id": task.id, "name": task.name, "error": None, "result": update,
                                        "interrupts": []})
            if "debug" in wanted:
                self.emit("debug", {"type": "task_result", "step": self.step, "timestamp": now(),
                                    "payload": {"id": task.id, "name": task.name, "result": value}})
        elif kind == "interrupt":
            self.tell_result(task, None, {}, tuple(value.interrupts))
            if self.wants("tasks"):
                self.emit("tasks", {"id": task.id, "name": task.name, "error": None, "result": {},
                                    "interrupts": list(value.interrupts)})
            self.interrupts += value.interrupts
            rank = next((n for n, t in enumerate(self.step_tasks) if t.id == task.id), 0)
            self.interrupt_rank.update((i.id, rank) for i in value.interrupts)
            self.save_writes(task.id, [(INTERRUPT, list(value.interrupts))])
        elif kind == "parent":
            self.parent_command = value
        else:
            if task.kind != "start":
                self.tell_result(task, value, {}, ())
                if self.wants("tasks"):
                    self.emit("tasks", {"id": task.id, "name": task.name, "error": value, "result": {},
                                        "interrupts": []})
            self.failed.append((task, value))
            self.save_writes(task.id, [(ERROR, picklable_error(value))])

    def end_step(self) -> None:
        """The barrier: apply the step's writes in task order, save the new checkpoint, route on."""
        if self.failed or self.parent_command:
            return
        if self.interrupts:  # in task order, whichever parallel task paused first
            interrupts = tuple(sorted((i for i in self.interrupts if i is not None),
                                      key=lambda i: self.interrupt_rank.get(i.id, 0)))
            self.emit("updates", {INTERRUPT: interrupts})
            self.emit("values", {**output_values(self.spec, self.checkpoint.values), INTERRUPT: interrupts})
            return
        tasks = self.step_tasks
        values = dict(self.checkpoint.values)
        state_writes = [w for t in tasks for w in t.writes if w[0] not in ROUTING and w[0] != DONE]
        changed = apply_writes(self.spec.channels, values, state_writes)
        validate_state(self.spec.state_schema, values, ", ".join(t.name for t in tasks))
        checkpoint = Checkpoint(new_checkpoint_id(), self.step, values, [], {}, [], dict(self.checkpoint.versions))
        for key in changed:
            checkpoint.versions[key] = checkpoint.id
        next_tasks(self.spec, self.checkpoint, checkpoint, tasks)
        metadata = {"source": "loop", "step": self.step, "parents": {},
                    "writes": {t.name: update_dict(t.writes, self.spec.channels) for t in tasks if t.kind != "start"}}
        parent_id = self.checkpoint.id
        self.checkpoint, self.done, self.resumes = checkpoint, {}, {}
        self.persist.save(checkpoint, metadata, changed, parent_id)
        if self.wants("values"):
            self.emit("values", output_values(self.spec, values))
        if self.wants("checkpoints"):
            self.emit("checkpoints", {"config": self.persist.config(checkpoint.id) if self.saver else None,
                                      "values": output_values(self.spec, values), "metadata": metadata,
                                      "next": [n for _, n, _ in checkpoint.tasks]})
        if self.wants("debug"):
            self.emit("debug", {"type": "checkpoint", "step": self.step, "timestamp": now(), "payload": {
                "values": output_values(self.spec, values), "next": [n for _, n, _ in checkpoint.tasks]}})
        self.step += 1
        if self._breakpoint(self.interrupt_after, tasks):
            if self.saver is None:
                raise RuntimeError("interrupt_after needs a checkpointer")
            if checkpoint.tasks:
                self.interrupts.append(None)
                self.emit("updates", {INTERRUPT: ()})

    def raise_if_failed(self) -> None:
        if self.failed:
            task, exc = self.failed[0]
            raise exc
        if self.parent_command is not None:
            raise self.parent_command


def _coerce_context(schema: type | None, context: Any) -> Any:
    """LangGraph's rule: a dict context becomes the context schema when that is a dataclass or pydantic model."""
    if isinstance(context, dict) and schema is not None and (is_dataclass(schema) or
                                                              (isinstance(schema, type) and issubclass(schema, BaseModel))):
        return schema(**context)
    return context


def _observer_failed(hook, exc: Exception) -> None:
    """An observer never breaks the run it watches: its failure is a warning."""
    owner = getattr(hook, "__self__", hook)
    warnings.warn(f"graph observer {type(owner).__name__} failed: {exc}", RuntimeWarning, stacklevel=3)


def _print_debug(event: dict) -> None:
    """A debug event as LangGraph's debug=True prints it: tasks as they start, their writes, checkpoints."""
    step, payload = event["step"], event["payload"]
    if event["type"] == "task":
        print(f"[{step}:tasks] Starting task {payload['name']} with input:\n{pprint.pformat(payload['input'])}")
    elif event["type"] == "task_result":
        print(f"[{step}:writes] Finished task {payload['name']} with writes:\n{pprint.pformat(payload['result'])}")
    else:
        print(f"[{step}:checkpoint] State at the end of step {step}:\n{pprint.pformat(payload['values'])}")
