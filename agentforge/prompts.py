"""Prompt patterns as plain data: zero-shot, few-shot with examples chosen by similarity, chain of
thought, ReAct, and a meta-prompt that writes a system prompt from a task description.

Every template is a `PromptTemplate` (a system and a user text with `{placeholders}`); copy one with
`dataclasses.replace` to change its wording. This module imports nothing of the application layer,
so every package (agents' text ReAct among them) can use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from agentforge.engine.protocol import ChatMessage

REACT_PROMPT = """Answer the user's question. You can use these tools:

{tools}

Use this format:

Thought: think about what to do next
Action: the tool to use, one of [{names}]
Action Input: the tool's arguments as a JSON object
Observation: the tool's result (given to you)
... (Thought / Action / Action Input / Observation can repeat)
Thought: I know the answer
Final Answer: the answer to the user's question"""


@dataclass(frozen=True)
class PromptTemplate:
    """A system text (optional) and a user text; `format(**values)` fills both."""

    user: str
    system: str | None = None

    def format(self, **values: object) -> list[ChatMessage]:
        try:
            system = self.system.format(**values) if self.system else None
            user = self.user.format(**values)
        except KeyError as exc:
            raise ValueError(f"the template needs a value for {exc.args[0]!r}") from exc
        return ([ChatMessage(role="system", content=system)] if system else []) + [ChatMessage(role="user", content=user)]


ZERO_SHOT = PromptTemplate(system="You are a helpful assistant. {instructions}", user="{input}")
CHAIN_OF_THOUGHT = PromptTemplate(
    system="You are a careful assistant. Think step by step: write your reasoning first, then the answer on a "
           "last line that starts with 'Answer:'.",
    user="{input}")
REACT = PromptTemplate(system=REACT_PROMPT, user="{input}")
META = PromptTemplate(
    system="You write system prompts for AI assistants. Given a task, write a short system prompt: the "
           "assistant's role, what it must do, the format of its answers, and what it must not do. Reply with "
           "the system prompt only.",
    user="Task: {task}")


@dataclass(frozen=True)
class FewShotPrompt:
    """Few-shot prompting: the `k` examples most similar to the input, as earlier turns of the chat.

    `examples` are `{"input": ..., "output": ...}` dicts; similarity is the cosine of `embed`'s
    vectors when given (any embedding function), else word overlap.
    """

    examples: Sequence[dict]
    k: int = 3
    system: str | None = None
    embed: Callable[[list[str]], Sequence[Sequence[float]]] | None = None

    def __post_init__(self) -> None:
        if not all(isinstance(e, dict) and {"input", "output"} <= set(e) for e in self.examples):
            raise ValueError("each example must be a dict with 'input' and 'output'")
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")

    def select(self, text: str) -> list[dict]:
        """The `k` examples closest to `text`, most similar last (nearest the question)."""
        inputs = [str(e["input"]) for e in self.examples]
        if not inputs:
            return []
        if self.embed is not None:
            vectors = np.asarray(self.embed([text, *inputs]), dtype=np.float32)
            norms = np.linalg.norm(vectors, axis=1) + 1e-9
            scores = (vectors[1:] @ vectors[0]) / (norms[1:] * norms[0])
        else:
            words = _words(text)
            scores = np.array([len(words & _words(i)) / (len(words | _words(i)) or 1) for i in inputs])
        order = np.argsort(-scores, kind="stable")[: self.k]
        return [self.examples[i] for i in reversed(order)]

    def format(self, input: str) -> list[ChatMessage]:
        messages = [ChatMessage(role="system", content=self.system)] if self.system else []
        for example in self.select(input):
            messages += [ChatMessage(role="user", content=str(example["input"])),
                         ChatMessage(role="assistant", content=str(example["output"]))]
        return messages + [ChatMessage(role="user", content=input)]


async def write_system_prompt(model, task: str, template: PromptTemplate = META) -> str:
    """A system prompt for `task`, written by `model` (any chat model with `ainvoke`) with the meta-prompt."""
    if not isinstance(task, str) or not task.strip():
        raise ValueError("describe the task in a non-empty string")
    reply = await model.ainvoke(template.format(task=task))
    return (reply.content or "").strip()


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))
