"""LangSmith export with the official `langsmith` SDK: each run becomes a run tree (chain, llm and
tool runs; token usage as `usage_metadata`), configured the usual way (`LANGSMITH_ENDPOINT`,
`LANGSMITH_API_KEY`, `LANGSMITH_PROJECT`; turned on by `LANGSMITH_TRACING=true` where AgentForge
builds the tracer itself). Run ids derive from span ids, and a run that continues a remote caller's
trace carries LangSmith's dotted order from it, so both processes' runs form one tree there."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from .spans import Span, run_id

RUN_TYPES = {"graph": "chain", "node": "chain", "llm": "llm", "tool": "tool"}


class LangSmithExporter:
    def __init__(self, client=None, *, project_name: str | None = None) -> None:
        from langsmith import Client

        self.client = client or Client()
        self.project_name = project_name or os.environ.get("LANGSMITH_PROJECT") or "default"

    def export(self, spans: list[Span]) -> None:
        from langsmith.run_trees import RunTree

        made: dict[str, RunTree] = {}
        root = None
        for span in spans:  # parents come before their children
            parent = made.get(span.parent_id)
            options = {"run_type": RUN_TYPES.get(span.kind, "chain"), "inputs": _as_dict(span.inputs, "input"),
                       "start_time": _time(span.start)}
            if parent is None:
                run = RunTree(name=span.name, id=run_id(span.trace_id, span.span_id), project_name=self.project_name,
                              ls_client=self.client, **_remote_parent(span), **options)
                root = root or run
            else:
                run = parent.create_child(span.name, run_id=run_id(span.trace_id, span.span_id), **options)
            outputs = _as_dict(span.outputs, "output")
            if span.kind == "llm" and "prompt_tokens" in span.attributes:
                input_tokens, output_tokens = span.attributes["prompt_tokens"], span.attributes.get("completion_tokens", 0)
                outputs["usage_metadata"] = {"input_tokens": input_tokens, "output_tokens": output_tokens,
                                             "total_tokens": input_tokens + output_tokens}
            run.end(outputs=outputs, error=span.error, end_time=_time(span.end or span.start),
                    metadata={k: v for k, v in span.attributes.items()
                              if isinstance(v, (str, int, float, bool)) and not k.startswith("langsmith.")})
            made[span.span_id] = run
        if root is not None:
            root.post(exclude_child_runs=False)
            self.client.flush()


def _remote_parent(span: Span) -> dict:
    """A root run's place under the caller's run (from its `langsmith-trace` dotted order)."""
    dotted = span.attributes.get("langsmith.parent_dotted_order")
    if not dotted:
        return {}
    segments = dotted.split(".")  # each "<start time>Z<run id>", the trace's root first
    return {"trace_id": segments[0][-36:], "parent_run_id": segments[-1][-36:], "parent_dotted_order": dotted}


def _as_dict(value, key: str) -> dict:
    return dict(value) if isinstance(value, dict) else {key: value}


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def tracing_enabled() -> bool:
    """LangSmith's own switch: LANGSMITH_TRACING (or the older LANGCHAIN_TRACING_V2) is true."""
    value = os.environ.get("LANGSMITH_TRACING") or os.environ.get("LANGCHAIN_TRACING_V2") or ""
    return value.lower() in ("1", "true", "yes")
