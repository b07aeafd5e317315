"""Tracing: each run of a graph as one span tree (the run, its nodes, LLM calls with token usage
and time to first token, tool calls), exported off the hot path to OpenTelemetry (GenAI semantic
conventions), LangSmith and a local SQLite store."""

from .langsmith import LangSmithExporter
from .otel import OpenTelemetryExporter
from .spans import Span
from .sqlite_store import SqliteTraceStore
from .tracer import Exporter, TracedGraph, flush, traced

__all__ = ["Exporter", "LangSmithExporter", "OpenTelemetryExporter", "Span", "SqliteTraceStore", "TracedGraph", "flush",
           "traced"]
