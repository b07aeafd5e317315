"""The step algebra of the runtime, as plain functions over checkpoints and writes: which tasks a
checkpoint holds, what a node's return value writes, where each task routes, which tasks the
next step runs (joins and deferred nodes included)."""

from __future__ import annotations

import asyncio
import hashlib
import pickle
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .checkpoint import Checkpoint
from .spec import GraphSpec
from .state import MISSING, apply_writes, as_input, split_return
from .types import END, Command, Interrupt, InvalidUpdateError, ParentCommand, Send

NEXT, SEND, ERROR, INTERRUPT, RESUME, DONE, BREAKPOINT, NULL_TASK = (
    "__next__", "__send__", "__error__", "__interrupt__", "__resume__", "__done__", "__breakpoint__", "__null__",
)
ROUTING = (NEXT, SEND)


@dataclass(slots=True)
class Task:
    id: str
    kind: str  # "start", "pull" or "push"
    name: str
    input: Any
    path: tuple
    resume: list = field(default_factory=list)  # values for this task's interrupt() calls, in call order
    writes: list[tuple[str, Any]] = field(default_factory=list)


def task_id(checkpoint_id: str, ns: str, path: tuple) -> str:
    return hashlib.blake2b(repr((checkpoint_id, ns, path)).encode(), digest_size=16).hexdigest()


def tasks_of(spec: GraphSpec, checkpoint: Checkpoint, ns: str, resumes: dict[str, list],
             remaining_steps: int | None = None) -> list[Task]:
    """The tasks `checkpoint` holds, each with its input (the state, or the keys its node declares,
    with managed keys such as `RemainingSteps` filled in)."""
    tasks = []
    state = dict(checkpoint.values)
    if remaining_steps is not None:
        state.update({k: remaining_steps for k, c in spec.channels.items() if c.managed})
    for i, (kind, name, arg) in enumerate(checkpoint.tasks):
        path = (kind, name) if kind != "push" else (kind, i, name)
        task = Task(task_id(checkpoint.id, ns, path), kind, name, arg, path)
        if kind == "pull":
            node = spec.nodes.get(name)
            if node is not None and node.input_schema is not None:
                values = {k: v for k, v in state.items() if k in node.input_keys}
                task.input = as_input(node.input_schema, values)
            else:
                task.input = as_input(spec.state_schema, state)
        task.resume = list(resumes.get(task.id, ()))
        tasks.append(task)
    return tasks


def node_writes(spec: GraphSpec, task: Task, values: dict, value: Any) -> list[tuple[str, Any]]:
    """A node's return value as writes: its state update plus where to go next."""
    writes, commands = split_return(value)
    for command in commands:
        if command.graph == Command.PARENT:
            raise ParentCommand(Command(graph=None, update=command.update, goto=command.goto))
        if command.graph is not None:
            raise InvalidUpdateError(f"unknown Command graph {command.graph!r}")
        if command.resume is not None:
            raise InvalidUpdateError("a node cannot return Command(resume=...)")
    return writes + routing(spec, task.name, values, writes, commands)


def routing(spec: GraphSpec, name: str, values: dict, writes: list, commands: list[Command]) -> list[tuple[str, Any]]:
    """Where node `name` goes next: static edges, then conditional edges (evaluated on the state
    with the task's own writes applied), then `Command.goto` targets."""
    out = [(NEXT, target) for target in spec.edges.get(name, ()) if target != END]
    branches = spec.branches.get(name, ())
    if branches:
        local = dict(values)
        apply_writes(spec.channels, local, writes)
        state = as_input(spec.state_schema, local)
        for branch in branches:
            result = branch.path(state)
            if asyncio.iscoroutine(result):
                result = run_coroutine(result)
            out += _targets(spec, result, branch.path_map)
    for command in commands:
        out += _targets(spec, command.goto, None)
    return out


def _targets(spec: GraphSpec, result: Any, path_map: dict | None) -> list[tuple[str, Any]]:
    out = []
    for item in gotos(result):
        if isinstance(item, Send):
            if item.node not in spec.nodes:
                raise InvalidUpdateError(f"Invalid node name '{item.node}' in Send")
            out.append((SEND, item))
            continue
        if path_map is not None:
            if item not in path_map:
                raise InvalidUpdateError(f"conditional edge returned {item!r}, which is not in its path_map")
            item = path_map[item]
        if item == END:
            continue
        if item not in spec.nodes:
            raise InvalidUpdateError(f"conditional edge or Command.goto returned unknown node {item!r}")
        out.append((NEXT, item))
    return out


def next_tasks(spec: GraphSpec, previous: Checkpoint | None, checkpoint: Checkpoint, tasks: list[Task]) -> None:
    """Fill `checkpoint`'s tasks from the routing writes of `tasks`, run after `previous` (joins and
    deferred nodes included)."""
    pulls: set[str] = set()
    sends: list[Send] = []
    joins = {k: list(v) for k, v in previous.joins.items()} if previous else {}
    for task in tasks:
        for channel, value in task.writes:
            if channel == NEXT:
                pulls.add(value)
            elif channel == SEND:
                sends.append(value)
        for sources, target in spec.joins:
            if task.name in sources:
                seen = joins.setdefault(f"{'+'.join(sources)}:{target}", [])
                if task.name not in seen:
                    seen.append(task.name)
    for sources, target in spec.joins:
        key = f"{'+'.join(sources)}:{target}"
        if set(joins.get(key, ())) >= set(sources):
            pulls.add(target)
            del joins[key]
    pulls.discard(END)
    deferred = set(previous.deferred if previous else ())
    for name in list(pulls):
        if name in spec.nodes and spec.nodes[name].defer:
            deferred.add(name)
            pulls.discard(name)
    if not pulls and not sends and deferred:
        pulls, deferred = deferred, set()
    checkpoint.tasks = [("pull", n, None) for n in sorted(pulls)] + [("push", s.node, s.arg) for s in sends]
    checkpoint.joins = joins
    checkpoint.deferred = sorted(deferred)


def run_coroutine(coro):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    raise RuntimeError("an async node or router cannot run inside a sync invoke() called from an event loop; use ainvoke()")


def picklable_error(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def gotos(result: Any) -> list:
    if result is None or result == ():
        return []
    if isinstance(result, (str, Send)):
        return [result]
    if isinstance(result, (list, tuple)):
        return list(result)
    return [result]


def writes_by_task(pending: list[tuple[str, str, Any]]) -> dict[str, list[tuple[str, Any]]]:
    grouped: dict[str, list[tuple[str, Any]]] = {}
    for owner, channel, value in pending:
        grouped.setdefault(owner, []).append((channel, value))
    return grouped


def by_task(pending: list[tuple[str, str, Any]]) -> tuple[dict[str, list], dict[str, BaseException], dict[str, list[Interrupt]]]:
    """Split saved pending writes into finished tasks' writes, errors and interrupts (by task id)."""
    done, errors, interrupts = {}, {}, {}
    for task_id, writes in writes_by_task(pending).items():
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


def update_dict(writes: list[tuple[str, Any]], channels: dict) -> dict | None:
    """A task's state writes as the `updates` stream shows them: {key: value}, or a list of values
    for a key written several times."""
    update: dict[str, Any] = {}
    for key, value in writes:  # on every step's hot path: one pass unless a key repeats
        if key in channels:
            if key in update:
                return _grouped(writes, channels)
            update[key] = value
    return update or None


def _grouped(writes: list[tuple[str, Any]], channels: dict) -> dict:
    grouped: dict[str, list] = {}
    for key, value in writes:
        if key in channels:
            grouped.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def initial_values(spec: GraphSpec) -> dict:
    """A new thread's state: reducer keys whose type builds empty (a list, a dict) start empty."""
    return {k: type(c.initial)() for k, c in spec.channels.items() if c.initial is not MISSING}


def output_values(spec: GraphSpec, values: dict) -> dict:
    keys = spec.output_key_set
    return {k: v for k, v in values.items() if k in keys and v is not MISSING}


def copy_checkpoint(checkpoint: Checkpoint) -> Checkpoint:
    return Checkpoint(checkpoint.id, checkpoint.step, dict(checkpoint.values), list(checkpoint.tasks),
                      {k: list(v) for k, v in checkpoint.joins.items()}, list(checkpoint.deferred),
                      dict(checkpoint.versions), checkpoint.interrupted)


def now() -> str:
    return datetime.now(timezone.utc).isoformat()
