"""What indexing costs: LLM calls, prompt and output tokens and wall time per stage, estimated
before a run and measured during it, and a budget that stops a run cleanly between calls (what is
done is kept; the next run resumes from there)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jsonschema
from pydantic import BaseModel

from agentforge.agents import ChatModel
from agentforge.agents.model import parse_structured


@dataclass(slots=True)
class StageCost:
    """One stage's LLM calls and tokens, and its wall time (first call's start to last call's end,
    or the whole stage where it makes no call)."""

    calls: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    failed: int = 0

    def add(self, other: StageCost) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.output_tokens += other.output_tokens
        self.seconds += other.seconds
        self.failed += other.failed


@dataclass(slots=True)
class Cost:
    """Per-stage cost; `estimated` says whether it is a forecast or a measurement."""

    stages: dict[str, StageCost] = field(default_factory=dict)
    estimated: bool = False

    def stage(self, name: str) -> StageCost:
        return self.stages.setdefault(name, StageCost())

    @property
    def total(self) -> StageCost:
        total = StageCost()
        for cost in self.stages.values():
            total.add(cost)
        return total

    def table(self) -> str:
        """A plain-text table, one row per stage and a total."""
        rows = [f"{'stage':<10}{'calls':>7}{'prompt tok':>12}{'output tok':>12}{'seconds':>10}"]
        for name, c in [*self.stages.items(), ("total", self.total)]:
            rows.append(f"{name:<10}{c.calls:>7}{c.prompt_tokens:>12}{c.output_tokens:>12}{c.seconds:>10.1f}"
                        + (f"  ({c.failed} failed)" if c.failed else ""))
        return "\n".join(rows)


@dataclass(slots=True, frozen=True)
class Budget:
    """Limits on one indexing run; a run that reaches one stops before its next LLM call."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_calls", "max_tokens", "max_seconds"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or value <= 0):
                raise ValueError(f"{name} must be a positive number or None, got {value!r}")

    def exceeded(self, cost: Cost, started: float) -> str | None:
        total = cost.total
        if self.max_calls is not None and total.calls >= self.max_calls:
            return f"max_calls={self.max_calls}"
        if self.max_tokens is not None and total.prompt_tokens + total.output_tokens >= self.max_tokens:
            return f"max_tokens={self.max_tokens}"
        if self.max_seconds is not None and time.perf_counter() - started >= self.max_seconds:
            return f"max_seconds={self.max_seconds}"
        return None


class BudgetExceeded(Exception):
    """Raised inside a run when its budget is spent; the run catches it and reports `stopped`."""


class Meter:
    """Calls the model for the pipeline's stages, counting each call against the budget.
    `get_model()` is asked for the model at the first call, so a run that needs none makes none."""

    def __init__(self, get_model: Callable[[], ChatModel], budget: Budget | None = None, concurrency: int = 4) -> None:
        self.get_model, self.budget = get_model, budget or Budget()
        self.cost, self.started = Cost(), time.perf_counter()
        self.stopped: str | None = None
        self._spans: dict[str, list[float]] = {}
        self._slots = asyncio.Semaphore(concurrency)

    @contextlib.contextmanager
    def timed(self, stage: str):
        """Adds the wall time of its block to `stage` (for the stages that make no LLM call)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.cost.stage(stage).seconds += time.perf_counter() - started

    async def text(self, stage: str, messages: list) -> str:
        """One free-text call; the reply's text."""
        return (await self._call(stage, self.get_model(), messages)).content or ""

    async def structured(self, stage: str, schema: type[BaseModel] | dict, messages: list) -> BaseModel | dict:
        """One constrained call; the reply parsed into `schema` (ValueError if it does not parse)."""
        reply = await self._call(stage, self.get_model().with_structured_output(schema).model, messages)
        try:
            return parse_structured(schema, reply)
        except (ValueError, jsonschema.ValidationError) as exc:
            self.cost.stage(stage).failed += 1
            raise ValueError(f"the model's {stage} reply does not fit its schema: {exc}") from exc

    async def _call(self, stage: str, model: ChatModel, messages: list):
        async with self._slots:
            if self.stopped or (reason := self.budget.exceeded(self.cost, self.started)):
                self.stopped = self.stopped or reason
                raise BudgetExceeded(self.stopped)
            cost = self.cost.stage(stage)
            cost.calls += 1
            span = self._spans.setdefault(stage, [time.perf_counter(), 0.0])
            try:
                reply = await model.ainvoke(messages)
            finally:
                span[1] = time.perf_counter()
                cost.seconds = span[1] - span[0]
            usage = reply.usage or {}
            cost.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            cost.output_tokens += int(usage.get("completion_tokens") or 0)
            return reply
