"""Running one task: a node's action (sync in a thread, or awaited), its retry policy and cache,
the keyword arguments it asks for, subgraphs as nodes. A task never raises: its outcome — writes,
an interrupt, a command for the parent graph, or an error — goes back to the run loop."""

from __future__ import annotations

import asyncio
import contextvars
import pickle
import time
from typing import Any

from .algo import INTERRUPT, Task, node_writes, routing, run_coroutine
from .loop import _Run
from .runtime import Runtime, _current, _TaskContext, get_stream_writer
from .spec import Node
from .state import MISSING, update_writes
from .types import Command, GraphInterrupt, InvalidUpdateError, ParentCommand

Outcome = tuple[str, Any]  # ("ok", writes) | ("interrupt", GraphInterrupt) | ("parent", ParentCommand) | ("error", exc)


def call_sync(run: _Run, task: Task) -> Outcome:
    """Run one task (with its retry policy) in this thread."""
    token = _current.set(_TaskContext(run, task))
    try:
        if task.kind == "start":
            return "ok", _start_writes(run, task)
        node = run.spec.nodes[task.name]
        value = _cached(run, node, task, lambda: _with_retries(node, lambda: _invoke(run, node, task)))
        return "ok", node_writes(run.spec, task, run.checkpoint.values, value)
    except Exception as exc:
        return _failure(run, task, exc)
    finally:
        _current.reset(token)


async def call_async(run: _Run, task: Task) -> Outcome:
    """Run one task on the event loop if its node is async (or a subgraph), else in a worker thread."""
    node = run.spec.nodes.get(task.name)
    if task.kind == "start" or node is None or not (node.is_async or node.subgraph is not None):
        return await asyncio.to_thread(contextvars.copy_context().run, call_sync, run, task)
    token = _current.set(_TaskContext(run, task))
    try:
        key, value = _cache_key(run, node, task), MISSING
        if key is not None:
            value = run.graph.cache.get(key)
        if value is MISSING:
            value = await _with_retries_async(node, lambda: _invoke_async(run, node, task))
            if key is not None:
                run.graph.cache.set(key, value, node.cache_policy.ttl)
        return "ok", node_writes(run.spec, task, run.checkpoint.values, value)
    except Exception as exc:
        return _failure(run, task, exc)
    finally:
        _current.reset(token)


def _failure(run: _Run, task: Task, exc: Exception) -> Outcome:
    if isinstance(exc, GraphInterrupt):
        return "interrupt", exc
    if isinstance(exc, ParentCommand):  # a subgraph's Command(graph=PARENT): this task's own output
        if run.parent is None:
            return "error", InvalidUpdateError("There is no parent graph")
        return "parent", exc
    if task.kind != "start":
        note = f"During task with name '{task.name}' and id '{task.id}'"
        if note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)
    return "error", exc


# --- retries -------------------------------------------------------------------------------


def _retry_delay(node: Node, exc: Exception, attempts: int) -> float | None:
    """Seconds to wait before attempt `attempts + 1` after `exc`, or None to give up: the first of
    the node's retry policies that retries this exception decides."""
    if isinstance(exc, (GraphInterrupt, ParentCommand)):
        return None
    policies = node.retry_policy if isinstance(node.retry_policy, (list, tuple)) else [node.retry_policy]
    policy = next((p for p in policies if p is not None and p.should_retry(exc)), None)
    if policy is None or attempts >= policy.max_attempts:
        return None
    return policy.wait(attempts)


def _with_retries(node: Node, call):
    attempts = 0
    while True:
        attempts += 1
        try:
            return call()
        except Exception as exc:
            delay = _retry_delay(node, exc, attempts)
            if delay is None:
                raise
            time.sleep(delay)


async def _with_retries_async(node: Node, call):
    attempts = 0
    while True:
        attempts += 1
        try:
            return await call()
        except Exception as exc:
            delay = _retry_delay(node, exc, attempts)
            if delay is None:
                raise
            await asyncio.sleep(delay)


# --- calling the node ----------------------------------------------------------------------


def _kwargs(run: _Run, node: Node) -> dict[str, Any]:
    """The keyword arguments the node's action asks for."""
    given = {}
    for name in node.injected:
        if name == "config":
            given[name] = run.config
        elif name == "runtime":
            given[name] = Runtime(run.context, get_stream_writer(), run.store)
        elif name == "store":
            given[name] = run.store
        else:  # "writer"
            given[name] = get_stream_writer()
    return given


def _invoke(run: _Run, node: Node, task: Task) -> Any:
    if node.subgraph is not None:
        return _subgraph_sync(run, node, task)
    result = node.action(task.input, **_kwargs(run, node))
    if asyncio.iscoroutine(result):
        result = run_coroutine(result)
    return result


async def _invoke_async(run: _Run, node: Node, task: Task) -> Any:
    if node.subgraph is not None:
        return await _subgraph_async(run, node, task)
    return await node.action(task.input, **_kwargs(run, node))


def _start_writes(run: _Run, task: Task) -> list[tuple[str, Any]]:
    inp = task.input
    writes = [(k, v) for k, v in update_writes(inp) if k in run.spec.input_keys]
    if not writes and not isinstance(inp, dict):
        raise InvalidUpdateError(f"Expected dict as graph input, got {inp!r}")
    return writes + routing(run.spec, task.name, run.checkpoint.values, writes, [])


def _cache_key(run: _Run, node: Node, task: Task):
    if node.cache_policy is None or run.graph.cache is None:
        return None
    key_func = node.cache_policy.key_func or (lambda value: pickle.dumps(value))
    return run.ns, node.name, key_func(task.input)


def _cached(run: _Run, node: Node, task: Task, compute):
    key = _cache_key(run, node, task)
    if key is None:
        return compute()
    hit = run.graph.cache.get(key)
    if hit is not MISSING:
        return hit
    value = compute()
    run.graph.cache.set(key, value, node.cache_policy.ttl)
    return value


# --- subgraphs -----------------------------------------------------------------------------


def _subgraph_options(run: _Run) -> dict:
    return {"stream_mode": ["values", "updates"], "subgraphs": run.subgraphs, "durability": run.persist.durability,
            "context": run.context}


def _subgraph_sync(run: _Run, node: Node, task: Task) -> Any:
    """Run a compiled graph as this node: the parent's state in, the shared keys of its final state out.
    An interrupt inside pauses the parent; the parent's resume value resumes the subgraph."""
    final = None
    try:
        for item in node.subgraph.stream(_subgraph_input(run, task), run.config, **_subgraph_options(run)):
            final = _subgraph_event(item, final)
    except ParentCommand as command:  # Command(graph=PARENT): the parent applies it as this node's output
        return command.command
    return _subgraph_output(run, final)


async def _subgraph_async(run: _Run, node: Node, task: Task) -> Any:
    final = None
    try:
        async for item in node.subgraph.astream(_subgraph_input(run, task), run.config, **_subgraph_options(run)):
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
