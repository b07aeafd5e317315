"""Spans, and the recorder that builds one run's span tree from the graph's own events, seen as a
graph observer (`config["observers"]`) where they happen: task starts and results (nodes, tool
calls; the "tasks" events as hook arguments) and "messages" chunks (LLM calls: time to first token,
output, token usage). Nothing below the application layer knows about tracing."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

MAX_CHARS = 20_000  # a span's inputs or outputs as JSON, cut beyond this
_now = time.time  # one lookup on the hot path


@dataclass(slots=True)
class Span:
    """One unit of work: `kind` "graph" (a run), "node", "llm" or "tool"; times in seconds since the epoch."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    start: float
    end: float | None = None
    inputs: Any = None
    outputs: Any = None
    error: str | None = None
    attributes: dict = field(default_factory=dict)


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data (pydantic models, dataclasses, tuples), long texts cut: one trip
    through orjson each way (a Python walk checking whether it already was plain cost 4x more)."""
    try:
        text, load = orjson.dumps(value, default=_to_plain, option=orjson.OPT_NON_STR_KEYS), orjson.loads
    except (TypeError, orjson.JSONEncodeError):  # integers beyond 64 bits: the standard library's way
        text, load = json.dumps(value, default=_to_plain), json.loads
    if len(text) > MAX_CHARS:
        return {"truncated": (text.decode() if isinstance(text, bytes) else text)[:MAX_CHARS]}
    return load(text)


def dumps(value: Any) -> str:
    """`value` as JSON text, fast (orjson; the standard library's encoder for what orjson refuses,
    such as integers beyond 64 bits); objects as `jsonable` turns them into data."""
    try:
        return orjson.dumps(value, default=_to_plain, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, default=_to_plain)


def _to_plain(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(exclude_none=True)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return repr(obj)


class Recorder:
    """A graph observer for one run. Seeing an event only queues it (the run's hot path); the spans
    are built from the queue when someone asks (`span_of_task`, `dotted_order`) or by `finish()`,
    which the tracer calls on its export thread. Inputs and outputs stay the run's own objects
    (`to_json` turns them into JSON data, also off the hot path)."""

    modes = ("messages",)  # tasks come through on_task_start / on_task_result

    def __init__(self, name: str, inputs: Any, trace_id: str | None = None, parent: RemoteParent | None = None) -> None:
        """`trace_id` names the trace (any string; normalized to 32 hex digits); a remote `parent`
        (a span of the process that asked for this run) makes the run a child in the caller's trace."""
        self.trace_id = parent.trace_id if parent is not None else (normalize_trace_id(trace_id) if trace_id else _random_id(16))
        self.root = Span(self.trace_id, _random_id(8), parent.span_id if parent else None, name, "graph", _now(),
                         inputs=inputs)
        if parent is not None and parent.langsmith_trace:
            self.root.attributes["langsmith.parent_dotted_order"] = parent.langsmith_trace
        self.spans: dict[str, Span] = {}  # by task id (nodes, tools) or message id (LLM calls)
        self._events: list[tuple] = []  # (handler, time, namespace, ...): what happened, not yet made spans
        self._llm_start: dict[str, float] = {}  # node span id -> when its next LLM call can have started
        self._lock = threading.Lock()  # parallel tasks report from their own threads

    # the hooks only queue what they are told, with the method that will make it a span (list.append
    # is atomic: safe from any thread)
    def on_task_start(self, namespace: tuple, id: str, name: str, input: Any, triggers: tuple) -> None:
        self._events.append((Recorder._task_started, _now(), namespace, id, name, input))

    def on_task_result(self, namespace: tuple, id: str, name: str, error: BaseException | None, result: Any,
                       interrupts: tuple) -> None:
        self._events.append((Recorder._task_finished, _now(), namespace, id, error, result, interrupts))

    def on_event(self, namespace: tuple, mode: str, payload: Any) -> None:  # "messages": (chunk, metadata)
        self._events.append((Recorder._llm_chunk, _now(), namespace, payload))

    def _catch_up(self) -> None:
        """Turn the queued events into spans, in the order they happened (call with the lock held)."""
        events, count = self._events, len(self._events)
        for handler, *event in events[:count]:
            handler(self, *event)
        del events[:count]  # events queued meanwhile stay for the next catch-up

    def _task_started(self, now: float, namespace: tuple, task_id: str, name: str, inputs: Any) -> None:
        parent = self.spans.get(namespace[-1].rsplit(":", 1)[-1]) if namespace else None
        call = inputs.get("tool_call") if isinstance(inputs, dict) else None
        span = Span(self.trace_id, task_id[:16], (parent or self.root).span_id, name, "node", now,
                    inputs=inputs, attributes={"node": name})
        if call is not None and hasattr(call, "function"):  # a tool call sent to its own task (ReAct agents)
            span.kind, span.name = "tool", call.function.name
            span.attributes.update({"tool.name": call.function.name, "tool.call_id": call.id})
            span.inputs = {"arguments": call.function.arguments}
        self.spans[task_id] = span
        self._llm_start[span.span_id] = now

    def _task_finished(self, now: float, namespace: tuple, task_id: str, error: BaseException | None, result: Any,
                       interrupts: tuple) -> None:
        span = self.spans.get(task_id)
        if span is None:
            return
        span.end, span.outputs = now, result
        if error is not None:
            span.error = f"{type(error).__name__}: {error}"
        elif interrupts:
            span.attributes["interrupted"] = True

    def _llm_chunk(self, now: float, namespace: tuple, payload: tuple) -> None:
        chunk, metadata = payload
        key = getattr(chunk, "id", None)
        if key is None:
            return
        span = self.spans.get(key)
        if span is None:
            node = self._open_node(namespace, metadata.get("langgraph_node"))
            parent = node.span_id if node else self.root.span_id
            start = self._llm_start.get(parent, now)
            span = Span(self.trace_id, _random_id(8), parent, "chat", "llm", start,
                        attributes={"time_to_first_token_s": round(now - start, 6)})
            self.spans[key] = span
        message = getattr(chunk, "message", None)
        if message is not None:
            span.end = now
            span.outputs = message
            usage = getattr(message, "usage", None) or {}
            span.attributes.update({k: usage[k] for k in ("prompt_tokens", "completion_tokens") if k in usage})
            self._llm_start[span.parent_id] = now

    def _open_node(self, namespace: tuple, name: str | None) -> Span | None:
        parent = self.spans.get(namespace[-1].rsplit(":", 1)[-1]) if namespace else None
        parent_id = (parent or self.root).span_id
        candidates = [s for s in self.spans.values() if s.kind == "node" and s.name == name and s.end is None
                      and s.parent_id == parent_id]
        return candidates[-1] if candidates else None

    def span_of_task(self, task_id: str) -> Span | None:
        with self._lock:
            self._catch_up()
            return self.spans.get(task_id)

    def dotted_order(self, span: Span) -> str:
        """LangSmith's dotted order of `span` (its ancestors' start times and run ids, root first),
        what a remote run needs to join this trace in LangSmith."""
        with self._lock:  # parallel tasks add spans while a tool asks for this
            self._catch_up()
            by_id = {s.span_id: s for s in self.spans.values()}
        by_id[self.root.span_id] = self.root
        chain = [span]
        while chain[-1].parent_id in by_id:
            chain.append(by_id[chain[-1].parent_id])
        own = ".".join(f"{datetime.fromtimestamp(s.start, timezone.utc):%Y%m%dT%H%M%S%fZ}{run_id(s.trace_id, s.span_id)}"
                       for s in reversed(chain))
        parent = self.root.attributes.get("langsmith.parent_dotted_order")
        return f"{parent}.{own}" if parent else own

    def finish(self, outputs: Any = None, error: BaseException | None = None, end: float | None = None) -> list[Span]:
        """The spans; `outputs` is the run's result (what invoke returned; None for a stream), `end`
        when the run ended (now if not given: the tracer calls this later, on its export thread)."""
        end = time.time() if end is None else end
        with self._lock:
            self._catch_up()
        self.root.end, self.root.outputs = end, outputs
        if error is not None:
            self.root.error = f"{type(error).__name__}: {error}"
        for span in self.spans.values():
            if span.end is None:  # a task that failed, was interrupted or cancelled
                span.end, span.error = end, self.root.error or "did not finish"
        return [self.root, *sorted(self.spans.values(), key=lambda s: s.start)]


@dataclass(slots=True, frozen=True)
class RemoteParent:
    """The span of another process that a run continues: from a W3C `traceparent`, plus LangSmith's
    `langsmith-trace` dotted order when the caller sent it."""

    trace_id: str
    span_id: str
    langsmith_trace: str | None = None


def normalize_trace_id(value: str) -> str:
    """A trace id as W3C trace context writes it (32 lowercase hex digits): kept if it is one, a
    UUID's hex, else a stable hash, so a run id of any spelling finds its trace."""
    text = str(value).strip().lower()
    if len(text) == 32 and all(c in "0123456789abcdef" for c in text):
        return text
    try:
        return uuid.UUID(text).hex
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"agentforge-trace:{value}").hex


def _random_id(size: int) -> str:
    """`size` random bytes as hex: a W3C trace id (16) or span id (8); uuid4() costs 5x more per run."""
    return os.urandom(size).hex()


def run_id(trace_id: str, span_id: str) -> uuid.UUID:
    """The LangSmith run id of a span: the same on every process that knows the span's ids."""
    return uuid.UUID(hex=trace_id[:16] + span_id)


def to_json(spans: list[Span]) -> list[Span]:
    """The spans with inputs and outputs as JSON data (a node's writes as {channel: value}). A run
    whose values all fit in `MAX_CHARS` together, none to cut, makes one trip through orjson."""
    values = [[span.inputs, span.outputs] for span in spans]
    whole = jsonable(values)
    if type(whole) is list:  # not cut
        for span, (inputs, outputs) in zip(spans, whole):
            span.inputs, span.outputs = inputs, outputs
        return spans
    for span in spans:
        span.inputs = jsonable(span.inputs)
        span.outputs = jsonable(span.outputs)
    return spans

