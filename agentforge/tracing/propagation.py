"""Trace context across processes: a node or tool of a traced run sends its span's W3C `traceparent`
(and LangSmith's `langsmith-trace`) with the A2A and MCP requests it makes, and a served run that
receives them joins the caller's trace as a child of that span — in every exporter, since span ids
are ours and the exporters keep them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from agentforge.graphs import get_config
from agentforge.tools.mcp_meta import add_request_meta

from .spans import Recorder, RemoteParent

TRACEPARENT = "traceparent"
LANGSMITH_TRACE = "langsmith-trace"
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_SEGMENT = r"\d{8}T\d{12}Z[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_DOTTED_ORDER = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT})*$")


def trace_headers() -> dict[str, str]:
    """Inside a node or tool of a traced run: the headers that make a remote run its child
    (`traceparent`, `langsmith-trace`); empty anywhere else."""
    try:
        config = get_config()
    except RuntimeError:  # not inside a graph node
        return {}
    recorder = next((o for o in config.get("observers", ()) if isinstance(o, Recorder)), None)
    task_id = config["configurable"]["checkpoint_ns"].rsplit(":", 1)[-1]
    span = recorder.span_of_task(task_id) if recorder is not None else None
    if span is None:
        return {}
    return {TRACEPARENT: f"00-{span.trace_id}-{span.span_id}-01", LANGSMITH_TRACE: recorder.dotted_order(span)}


def remote_parent(headers: Mapping[str, str]) -> RemoteParent | None:
    """The caller's span named by request headers (or MCP `_meta`), None when there is none or it is malformed."""
    if not headers:
        return None
    lowered = {str(k).lower(): v for k, v in headers.items()}
    match = _TRACEPARENT.match(str(lowered.get(TRACEPARENT, "")).strip())
    if match is None or set(match[1]) == {"0"} or set(match[2]) == {"0"}:
        return None
    langsmith = str(lowered.get(LANGSMITH_TRACE) or "").strip()
    return RemoteParent(match[1], match[2], langsmith if _DOTTED_ORDER.match(langsmith) else None)


def continue_trace(config: dict | None, headers: Mapping[str, str]) -> dict:
    """`config` for a traced run that continues the caller's trace named in `headers` (kept in
    `config["metadata"]`, where `traced` graphs look for it); unchanged when they name none."""
    config = dict(config or {})
    parent = remote_parent(headers)
    if parent is not None:
        found = {TRACEPARENT: f"00-{parent.trace_id}-{parent.span_id}-01"}
        if parent.langsmith_trace:
            found[LANGSMITH_TRACE] = parent.langsmith_trace
        config["metadata"] = {**config.get("metadata", {}), **found}
    return config


def _mcp_meta() -> dict[str, str]:
    """MCP reserves `traceparent` in a request's `_meta` (SEP-414); LangSmith's header is not a valid `_meta` key."""
    headers = trace_headers()
    return {TRACEPARENT: headers[TRACEPARENT]} if headers else {}


add_request_meta(_mcp_meta)
