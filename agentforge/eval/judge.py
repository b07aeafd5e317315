"""LLM-as-a-judge with verdicts that always parse: the judge answers under a JSON schema (on the
embedded engine the schema constrains decoding), a score on a fixed scale and its reasoning.
Pairwise judging asks twice with the answers swapped, so position bias cancels out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from agentforge.engine.protocol import ChatMessage

RUBRIC_PROMPT = ("You grade an answer against a rubric.\n\nRubric: {rubric}\n\nQuestion: {question}\n\n"
                 "{reference}Answer to grade: {answer}\n\nGive a short reasoning, then a score from {low} (worst) "
                 "to {high} (best).")
PAIRWISE_PROMPT = ("Which answer is better on this criterion: {criterion}\n\nQuestion: {question}\n\n"
                   "Answer A: {a}\n\nAnswer B: {b}\n\nGive a short reasoning, then the winner: A, B or tie.")


class LLMJudge:
    """A metric from a rubric: `judge(prediction, question=..., reference=...)` returns the score
    scaled to [0, 1]; `.verdict(...)` the raw score and reasoning."""

    def __init__(self, model, rubric: str, *, scale: tuple[int, int] = (1, 5), name: str = "judge") -> None:
        from agentforge.agents import as_chat_model

        low, high = scale
        if not (isinstance(low, int) and isinstance(high, int) and low < high and high - low <= 10):
            raise ValueError("scale is (low, high), integers with low < high and at most 10 apart")
        if not isinstance(rubric, str) or not rubric.strip():
            raise ValueError("rubric must be a non-empty string")
        self.rubric, self.scale, self.__name__ = rubric, scale, name

        class Verdict(BaseModel):
            reasoning: str = Field(max_length=600)
            score: Literal[tuple(range(low, high + 1))]

        self._model = as_chat_model(model).with_structured_output(Verdict)

    def verdict(self, prediction: str, *, question: str = "", reference: str | None = None) -> BaseModel:
        low, high = self.scale
        prompt = RUBRIC_PROMPT.format(rubric=self.rubric, question=question, answer=prediction, low=low, high=high,
                                      reference=f"Reference answer: {reference}\n\n" if reference else "")
        return self._model.invoke([ChatMessage(role="user", content=prompt)])

    def __call__(self, prediction: str, *, question: str = "", reference: str | None = None) -> float:
        low, high = self.scale
        return (self.verdict(prediction, question=question, reference=reference).score - low) / (high - low)


class _Preference(BaseModel):
    reasoning: str = Field(max_length=600)
    winner: Literal["A", "B", "tie"]


@dataclass(slots=True)
class PairwiseResult:
    """`winner` "first", "second" or "tie": the answers' verdicts agreed across both orders, else a tie."""

    winner: str
    verdicts: tuple[str, str]  # the judge's raw winner with the first answer as A, then as B


def pairwise(model, question: str, first: str, second: str, *,
             criterion: str = "correct, complete and to the point") -> PairwiseResult:
    """Judge two answers twice, swapping their positions; a preference counts only when it survives the swap."""
    from agentforge.agents import as_chat_model

    judge = as_chat_model(model).with_structured_output(_Preference)

    def ask(a: str, b: str) -> str:
        prompt = PAIRWISE_PROMPT.format(criterion=criterion, question=question, a=a, b=b)
        return judge.invoke([ChatMessage(role="user", content=prompt)]).winner

    straight, swapped = ask(first, second), ask(second, first)
    as_first = {"A": "first", "B": "second", "tie": "tie"}[straight]
    as_second = {"A": "second", "B": "first", "tie": "tie"}[swapped]
    return PairwiseResult(as_first if as_first == as_second else "tie", (straight, swapped))
