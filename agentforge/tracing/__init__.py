"""Tracing: each run of a graph as one span tree (the run, its nodes, LLM calls with token usage
and time to first token, tool calls), exported off the hot path to OpenTelemetry (GenAI semantic
conventions), LangSmith and a local SQLite store; across A2A and MCP calls a remote run joins its
caller's trace (`trace_headers`, `continue_trace`)."""

from ._export_thread import flush
from .langsmith import LangSmithExporter
from .otel import OpenTelemetryExporter
from .propagation import continue_trace, trace_headers
from .spans import Span
from .sqlite_store import SqliteTraceStore
from .tracer import Exporter, TracedGraph, export_spans, traced

__all__ = ["Exporter", "LangSmithExporter", "OpenTelemetryExporter", "Span", "SqliteTraceStore", "TracedGraph",
           "continue_trace", "export_spans", "flush", "trace_headers", "traced"]
