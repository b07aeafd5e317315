"""Prompt patterns: templates as data, few-shot example selection by similarity, the meta-prompt."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from agentforge.agents import ScriptedChatModel
from agentforge.prompts import CHAIN_OF_THOUGHT, META, REACT, ZERO_SHOT, FewShotPrompt, write_system_prompt

EXAMPLES = [{"input": "Translate 'cat' to French", "output": "chat"},
            {"input": "What is 2 + 2?", "output": "4"},
            {"input": "Translate 'dog' to French", "output": "chien"},
            {"input": "What is the capital of Italy?", "output": "Rome"}]


def test_templates_fill_and_can_be_overridden():
    messages = ZERO_SHOT.format(instructions="Answer in one word.", input="Sky colour?")
    assert [(m.role, m.content) for m in messages] == [
        ("system", "You are a helpful assistant. Answer in one word."), ("user", "Sky colour?")]
    assert "step by step" in CHAIN_OF_THOUGHT.format(input="x")[0].content
    assert "Action Input" in REACT.format(tools="- t: a tool", names="t", input="go")[0].content
    terse = replace(ZERO_SHOT, system="Be terse. {instructions}")
    assert terse.format(instructions="", input="hi")[0].content == "Be terse. "
    with pytest.raises(ValueError, match="'input'"):
        ZERO_SHOT.format(instructions="x")


def test_few_shot_picks_the_most_similar_examples():
    prompt = FewShotPrompt(EXAMPLES, k=2, system="Answer briefly.")
    messages = prompt.format("Translate 'bird' to French")
    assert [m.content for m in messages] == ["Answer briefly.", "Translate 'dog' to French", "chien",
                                             "Translate 'cat' to French", "chat", "Translate 'bird' to French"]


def test_few_shot_with_an_embedding_function():
    def embed(texts):  # "math" axis and "language" axis
        return [np.array([t.count("+") + t.count("What is"), t.count("Translate")], dtype=np.float32) for t in texts]

    picked = FewShotPrompt(EXAMPLES, k=1, embed=embed).select("What is 7 + 5?")
    assert picked == [{"input": "What is 2 + 2?", "output": "4"}]
    with pytest.raises(ValueError, match="'input' and 'output'"):
        FewShotPrompt([{"question": "x"}])


def test_meta_prompt_writes_a_system_prompt():
    model = ScriptedChatModel(["  You are a support agent for a bike shop. Answer politely.  "])
    written = asyncio.run(write_system_prompt(model, "customer support for a bike shop"))
    assert written == "You are a support agent for a bike shop. Answer politely."
    assert model.calls[0]["messages"][0].content == META.system
    assert model.calls[0]["messages"][1].content == "Task: customer support for a bike shop"
