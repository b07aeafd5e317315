"""What a node can reach while it runs: `interrupt`, the stream and message writers, and its `Runtime`
(the run's `context`) and the run's config, as in LangGraph. A node asks for the runtime by taking a `runtime` argument
(or calls `get_runtime()`), for the run config with a `config` argument, for the custom stream's
writer with a `writer` argument.
"""

from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .types import GraphInterrupt, Interrupt

if TYPE_CHECKING:
    from .loop import Task, _Run

ContextT = TypeVar("ContextT")


@dataclass(frozen=True, slots=True)
class Runtime(Generic[ContextT]):
    """Run-scoped things a node may use: the `context` the run was given (`invoke(..., context=...)`,
    coerced to the graph's `context_schema` when that is a dataclass or pydantic model), the
    writer of the "custom" stream, and the graph's long-term `store`."""

    context: ContextT | None = None
    stream_writer: Callable[[Any], None] = field(default=lambda chunk: None)
    store: Any = None


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


def get_stream_writer() -> Callable[[Any], None]:
    """Inside a node: a function that sends any value to the caller's "custom" stream."""
    ctx = _current.get()
    if ctx is None:
        return lambda chunk: None
    return lambda chunk: ctx.run.emit("custom", chunk)


def get_message_writer() -> Callable[[Any], None]:
    """Inside a node: a function that streams LLM output (token deltas, messages) to the caller's
    "messages" stream as `(chunk, metadata)`."""
    ctx = _current.get()
    if ctx is None:
        return lambda chunk: None
    metadata = {"langgraph_step": ctx.run.step, "langgraph_node": ctx.task.name, "langgraph_path": ctx.task.path,
                "checkpoint_ns": ctx.run.ns}
    return lambda chunk: ctx.run.emit("messages", (chunk, metadata))


def get_runtime(context_schema: type[ContextT] | None = None) -> Runtime[ContextT]:
    """Inside a node: the run's `Runtime` (`context_schema` only types the result)."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("get_runtime() can only be called inside a graph node")
    return Runtime(ctx.run.context, get_stream_writer(), ctx.run.store)


def get_config() -> dict:
    """Inside a node, or a tool it runs: the run's config, with this task's namespace
    ("parent|node:task_id") as `configurable["checkpoint_ns"]`, as LangGraph's `get_config()` gives it."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("get_config() can only be called inside a graph node")
    namespace = f"{ctx.run.ns}|{ctx.task.name}:{ctx.task.id}".lstrip("|")
    return {**ctx.run.config, "configurable": {**ctx.run.config.get("configurable", {}), "checkpoint_ns": namespace}}


def get_store() -> Any:
    """Inside a node, or a tool it runs: the graph's store (`compile(store=...)`), else None."""
    ctx = _current.get()
    return ctx.run.store if ctx is not None else None


def _interrupt_id(task_id: str, index: int) -> str:
    return hashlib.blake2b(f"interrupt:{task_id}:{index}".encode(), digest_size=16).hexdigest()
