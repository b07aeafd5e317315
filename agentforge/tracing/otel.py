"""OpenTelemetry export with the GenAI semantic-convention names: a run is `invoke_agent`, an LLM
call `chat` (token usage as `gen_ai.usage.*`), a tool call `execute_tool`; message content only
when `capture_content=True` (the convention's opt-in). Spans keep AgentForge's trace and span ids,
so a run started by another process's A2A or MCP call hangs under that caller's span."""

from __future__ import annotations

import json
import threading

from .spans import Span


class _PlannedIds:
    """The SDK's id generator for our tracer: it hands out the ids of the span about to start."""

    def __init__(self) -> None:
        self.trace_id = self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id

    def is_trace_id_random(self) -> bool:
        return False  # a run id may name the trace


class OpenTelemetryExporter:
    """Spans to an OpenTelemetry `TracerProvider` (default: the global one; configure it with an
    OTLP exporter, or the SDK's in-memory exporter in tests)."""

    def __init__(self, tracer_provider=None, *, capture_content: bool = False) -> None:
        from opentelemetry import trace

        provider = tracer_provider or trace.get_tracer_provider()
        self.tracer = provider.get_tracer("agentforge")
        self.capture_content = capture_content
        self._ids = _PlannedIds()
        self._lock = threading.Lock()
        if hasattr(self.tracer, "id_generator"):  # the SDK's tracer (a new one per get_tracer): ours to set
            self.tracer.id_generator = self._ids

    def export(self, spans: list[Span]) -> None:
        with self._lock:
            self._export(spans)

    def _export(self, spans: list[Span]) -> None:
        from opentelemetry import trace
        from opentelemetry.context import Context
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

        made = {}
        for span in spans:  # parents come before their children
            parent = made.get(span.parent_id)
            if parent is None and span.parent_id:  # the caller's span in another process
                parent = NonRecordingSpan(SpanContext(int(span.trace_id, 16), int(span.parent_id, 16), is_remote=True,
                                                      trace_flags=TraceFlags(TraceFlags.SAMPLED)))
            context = trace.set_span_in_context(parent) if parent is not None else Context()
            name, attributes = self._describe(span)
            kind = SpanKind.CLIENT if span.kind == "llm" else SpanKind.INTERNAL
            self._ids.trace_id, self._ids.span_id = int(span.trace_id, 16), int(span.span_id, 16)
            otel_span = self.tracer.start_span(name, context=context, kind=kind, attributes=attributes,
                                               start_time=int(span.start * 1e9))
            if span.error:
                otel_span.set_status(Status(StatusCode.ERROR, span.error))
                otel_span.set_attribute("error.type", span.error.split(":", 1)[0])
            otel_span.end(end_time=int((span.end or span.start) * 1e9))
            made[span.span_id] = otel_span

    def _describe(self, span: Span) -> tuple[str, dict]:
        attributes: dict = {"agentforge.span.kind": span.kind}
        if span.kind == "graph":
            name = f"invoke_agent {span.name}"
            attributes.update({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": span.name})
        elif span.kind == "llm":
            name = "chat"
            attributes["gen_ai.operation.name"] = "chat"
            for ours, theirs in (("prompt_tokens", "gen_ai.usage.input_tokens"),
                                 ("completion_tokens", "gen_ai.usage.output_tokens")):
                if ours in span.attributes:
                    attributes[theirs] = span.attributes[ours]
            if "time_to_first_token_s" in span.attributes:
                attributes["agentforge.time_to_first_token_s"] = span.attributes["time_to_first_token_s"]
            if self.capture_content:
                attributes["gen_ai.output.messages"] = json.dumps([span.outputs])
        elif span.kind == "tool":
            name = f"execute_tool {span.name}"
            attributes.update({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": span.name,
                               "gen_ai.tool.call.id": span.attributes.get("tool.call_id", "")})
            if self.capture_content:
                attributes["gen_ai.tool.call.arguments"] = json.dumps(span.inputs)
        else:
            name = span.name
            attributes["agentforge.node"] = span.name
        return name, attributes
