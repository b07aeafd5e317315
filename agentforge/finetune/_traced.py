"""A training run as one trace in `agentforge.tracing`: a root span "finetune" (the run's settings
in, its final metrics out, its error if it failed), a "train" span per logging interval (loss,
learning rate, tokens/s, GRPO's rewards) and an "eval" span per evaluation — in the local trace
store (`trace_store`), LangSmith (LANGSMITH_TRACING=true) or any exporter given to `finetune`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from transformers import TrainerCallback

from agentforge.tracing import Exporter, Span, SqliteTraceStore, export_spans, flush
from agentforge.tracing.langsmith import LangSmithExporter, tracing_enabled


def exporters_for(trace_store: Path | None, given: Sequence[Exporter]) -> list[Exporter]:
    return [*given, *([SqliteTraceStore(trace_store)] if trace_store else []),
            *([LangSmithExporter()] if tracing_enabled() else [])]


class TracedRun(TrainerCallback):
    """Collects the run's spans as the trainer logs; `finish` exports them."""

    def __init__(self, exporters: list[Exporter], name: str, settings: dict) -> None:
        self.exporters = exporters
        self.root = Span(uuid.uuid4().hex, uuid.uuid4().hex[:16], None, name, "finetune", time.time(), inputs=settings)
        self.children: list[Span] = []
        self.last = self.root.start

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        logged = state.log_history[-1] if state.log_history else {}  # raw values (the progress bar formats `logs`)
        numbers = _numbers(logged)
        if "train_loss" in numbers:  # the closing summary: the root's outputs
            return
        now = time.time()
        kind = "eval" if any(k.startswith("eval_") for k in numbers) else "train"
        self.children.append(Span(self.root.trace_id, uuid.uuid4().hex[:16], self.root.span_id,
                                  f"{kind} @ step {state.global_step}", kind, self.last, now,
                                  attributes={"step": state.global_step, **numbers}))
        self.last = now

    def finish(self, metrics: dict | None = None, error: BaseException | None = None) -> None:
        self.root.end = time.time()
        self.root.outputs = metrics
        self.root.attributes.update(_numbers(metrics or {}))
        if error is not None:
            self.root.error = f"{type(error).__name__}: {error}"
        export_spans(self.exporters, [self.root, *self.children])
        flush(timeout=30)


def _numbers(values: dict) -> dict:
    return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
