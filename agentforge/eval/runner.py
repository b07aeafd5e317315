"""Run a graph, a chat model or a function over a dataset concurrently, score every output with
the chosen metrics, aggregate with bootstrap confidence intervals, compare two runs."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics as m
from .dataset import Example
from .judge import LLMJudge

BOOTSTRAP_SAMPLES = 1000


@dataclass(slots=True)
class Output:
    """What a target produced for one example: the answer text, the tool calls it made (agents),
    and the raw result."""

    text: str
    tool_calls: list[dict] = field(default_factory=list)
    raw: Any = None


def _on_text(fn: Callable[[str, Any], float]) -> Callable[[Output, Example], float]:
    return lambda out, ex: fn(out.text, ex.reference)


METRICS: dict[str, Callable[[Output, Example], float]] = {
    "exact_match": _on_text(m.exact_match),
    "normalized_exact_match": _on_text(m.normalized_exact_match),
    "fuzzy_match": _on_text(m.fuzzy_match),
    "edit_distance": _on_text(m.edit_distance),
    "token_f1": _on_text(m.token_f1),
    "bleu": _on_text(m.bleu),
    "chrf": _on_text(m.chrf),
    "embedding_similarity": _on_text(m.embedding_similarity),
    "tool_calls": lambda out, ex: m.tool_calls_match(out.tool_calls, ex.reference["tool_calls"]),
    "tool_calls_any_order": lambda out, ex: m.tool_calls_match(out.tool_calls, ex.reference["tool_calls"], order=False),
}


@dataclass
class EvalRun:
    """Per-example rows ({index, input, reference, output, scores, error, seconds}) and a summary
    per metric ({mean, ci_low, ci_high, n, errors}; with repeats also {sd} over the repeats' means)."""

    name: str
    rows: list[dict]
    summary: dict[str, dict]

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"name": self.name, "summary": self.summary, "rows": self.rows}, indent=1,
                                         default=str))

    @classmethod
    def from_json(cls, path: str | Path) -> EvalRun:
        data = json.loads(Path(path).read_text())
        return cls(data["name"], data["rows"], data["summary"])

    def to_html(self, path: str | Path, *, compared: EvalRun | None = None) -> None:
        """A self-contained HTML report (summary with charts, the comparison, every row)."""
        from .report import render_html

        Path(path).write_text(render_html(self, compared), encoding="utf-8")

    def log_to_wandb(self, project: str | None = None, **init_options) -> str:
        """Log this run to Weights & Biases (a run of job type "eval": the summary's means and
        intervals, every row in a table); `WANDB_MODE=offline` writes it locally. Returns its directory."""
        import wandb

        run = wandb.init(project=project or "agentforge-eval", name=self.name, job_type="eval",
                         config={"examples": len({r["index"] for r in self.rows}),
                                 "repeats": len({r["repeat"] for r in self.rows})}, **init_options)
        try:
            for metric, entry in self.summary.items():
                for key, value in entry.items():
                    if value is not None:
                        run.summary[f"{metric}/{key}"] = value
            metrics = list(self.summary)
            table = wandb.Table(columns=["index", "repeat", "input", "reference", "output", "error", *metrics])
            for r in self.rows:
                table.add_data(r["index"], r["repeat"], json.dumps(r["input"], default=str),
                               json.dumps(r["reference"], default=str), r["output"], r["error"],
                               *[r["scores"].get(m) for m in metrics])
            run.log({"rows": table})
            return run.dir
        finally:
            run.finish()

    def compare(self, other: EvalRun) -> dict[str, dict]:
        """Per metric: this run's mean, the other's, the difference of paired per-example scores
        (by example index and repeat) with its bootstrap 95 % interval."""
        mine = {(r["index"], r.get("repeat", 0)): r["scores"] for r in self.rows}
        theirs = {(r["index"], r.get("repeat", 0)): r["scores"] for r in other.rows}
        out = {}
        for metric in self.summary.keys() & other.summary.keys():
            pairs = [(mine[k][metric], theirs[k][metric]) for k in mine.keys() & theirs.keys()
                     if mine[k].get(metric) is not None and theirs[k].get(metric) is not None]
            diffs = np.array([a - b for a, b in pairs], dtype=np.float64)
            low, high = _bootstrap(diffs)
            out[metric] = {"this": self.summary[metric]["mean"], "other": other.summary[metric]["mean"],
                           "diff": float(diffs.mean()) if len(diffs) else None, "ci_low": low, "ci_high": high,
                           "n": len(diffs)}
        return out


async def aevaluate(target, dataset: Sequence[Example], metrics: Sequence[str | Callable], *, concurrency: int = 4,
                    repeats: int = 1, name: str = "eval", progress: bool = True) -> EvalRun:
    """Run `target` (a compiled graph, a chat model, or a function of the input, sync or async) on
    every example `repeats` times, at most `concurrency` at once; a failing example is recorded
    with its error and never stops the run."""
    if not dataset:
        raise ValueError("the dataset is empty")
    if not isinstance(concurrency, int) or concurrency < 1 or not isinstance(repeats, int) or repeats < 1:
        raise ValueError("concurrency and repeats must be positive integers")
    scorers = {_metric_name(metric): _scorer(metric) for metric in metrics}
    if not scorers:
        raise ValueError("give at least one metric")
    run = _runner(target)
    limit = asyncio.Semaphore(concurrency)
    bar = _progress(len(dataset) * repeats, name) if progress else None

    async def one(index: int, example: Example, repeat: int) -> dict:
        async with limit:
            started = time.perf_counter()
            row = {"index": index, "repeat": repeat, "input": example.input, "reference": example.reference,
                   "output": None, "scores": {}, "error": None}
            try:
                output = await run(example.input)
                row["output"] = output.text
                if output.tool_calls:
                    row["tool_calls"] = output.tool_calls
                for metric, score in scorers.items():
                    row["scores"][metric] = await asyncio.to_thread(score, output, example)
            except Exception as exc:  # one bad example is a row with an error, not a dead run
                row["error"] = f"{type(exc).__name__}: {exc}"
                row["scores"] = {metric: row["scores"].get(metric) for metric in scorers}
            row["seconds"] = round(time.perf_counter() - started, 3)
            if bar is not None:
                bar.update()
            return row

    rows = await asyncio.gather(*(one(i, ex, r) for r in range(repeats) for i, ex in enumerate(dataset)))
    if bar is not None:
        bar.close()
    return EvalRun(name, sorted(rows, key=lambda r: (r["index"], r["repeat"])), _summarize(rows, list(scorers), repeats))


def evaluate(target, dataset: Sequence[Example], metrics: Sequence[str | Callable], **options) -> EvalRun:
    """`aevaluate` for synchronous code."""
    from agentforge.agents.model import run_sync

    return run_sync(aevaluate(target, dataset, metrics, **options))


def _metric_name(metric) -> str:
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; built in: {', '.join(sorted(METRICS))}")
        return metric
    return getattr(metric, "__name__", type(metric).__name__)


def _scorer(metric) -> Callable[[Output, Example], float]:
    if isinstance(metric, str):
        return METRICS[metric]
    if isinstance(metric, LLMJudge):
        return lambda out, ex: metric(out.text, question=_as_text(ex.input),
                                      reference=ex.reference if isinstance(ex.reference, str) else None)
    if not callable(metric):
        raise ValueError(f"a metric is a name or a function (output, example) -> float, got {metric!r}")
    return lambda out, ex: float(metric(out, ex))


def _runner(target) -> Callable:
    """An async function input -> Output for a compiled graph, a chat model or a plain function."""
    if getattr(target, "_is_compiled_graph", False):
        async def run_graph(value):
            return _graph_output(await target.ainvoke(_graph_input(target, value)))
        return run_graph
    if hasattr(target, "ainvoke"):
        async def run_model(value):
            reply = await target.ainvoke([{"role": "user", "content": _as_text(value)}])
            return Output(reply.content or "", [{"name": c.function.name, "args": json.loads(c.function.arguments)}
                                                for c in reply.tool_calls or []], reply)
        return run_model
    if callable(target):
        async def run_function(value):
            result = await target(value) if inspect.iscoroutinefunction(target) else await asyncio.to_thread(target, value)
            return result if isinstance(result, Output) else Output(result if isinstance(result, str) else json.dumps(
                result, default=str), raw=result)
        return run_function
    raise ValueError("target must be a compiled graph, a chat model or a function")


def _graph_input(graph, value):
    """A text input becomes the user message, or the `question` of a graph that takes one (RAG)."""
    if not isinstance(value, str):
        return value
    channels = getattr(getattr(graph, "spec", None), "channels", None) or {}
    return {"question": value} if "question" in channels and "messages" not in channels else \
        {"messages": [{"role": "user", "content": value}]}


def _graph_output(state: dict) -> Output:
    messages = state.get("messages") or []
    calls = [{"name": c.function.name, "args": json.loads(c.function.arguments)} for msg in messages
             if getattr(msg, "role", None) == "assistant" for c in (msg.tool_calls or [])]
    if messages:
        text = messages[-1].content or ""
    elif "answer" in state:
        text = state["answer"]
    else:
        text = json.dumps(state, default=str)
    return Output(text if isinstance(text, str) else json.dumps(text, default=str), calls, state)


def _as_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _bootstrap(values: np.ndarray) -> tuple[float | None, float | None]:
    """95 % percentile interval of the mean, from a fixed seed: the same scores give the same interval."""
    if len(values) == 0:
        return None, None
    rng = np.random.default_rng(0)
    means = values[rng.integers(0, len(values), size=(BOOTSTRAP_SAMPLES, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _summarize(rows: list[dict], metrics: list[str], repeats: int) -> dict[str, dict]:
    summary = {}
    for metric in metrics:
        scores = np.array([r["scores"][metric] for r in rows if r["scores"].get(metric) is not None], dtype=np.float64)
        low, high = _bootstrap(scores)
        entry = {"mean": float(scores.mean()) if len(scores) else None, "ci_low": low, "ci_high": high,
                 "n": int(len(scores)), "errors": sum(1 for r in rows if r["scores"].get(metric) is None)}
        if repeats > 1:
            per_repeat = [np.mean([r["scores"][metric] for r in rows if r["repeat"] == k and r["scores"].get(metric)
                                   is not None] or [np.nan]) for k in range(repeats)]
            entry["sd"] = float(np.nanstd(per_repeat, ddof=1))
        summary[metric] = entry
    return summary


def _progress(total: int, name: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="example", leave=False)
