"""Plan-and-execute (replanning, its bound), chain of thought and reflection with scripted models."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from agentforge.agents import ScriptedChatModel, create_cot_agent, create_plan_and_execute, create_reflection_agent
from agentforge.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def lookup(key: str) -> str:
    """Look a key up in the directory."""
    return {"ceo": "Ada Lovelace"}[key]


def call(name: str, id: str, **args) -> dict:
    return {"content": "", "tool_calls": [{"name": name, "args": args, "id": id}]}


def test_plan_execute_replan_then_answer():
    model = ScriptedChatModel([
        '{"steps": ["find the CEO", "add 40 and 2", "write a poem"]}',
        call("lookup", "c1", key="ceo"), "The CEO is Ada Lovelace.",
        '{"response": null, "steps": ["add 40 and 2"]}',  # replanned: the poem is dropped
        call("add", "c2", a=40, b=2), "It is 42.",
        '{"response": "Ada Lovelace, and 42."}',
    ])
    out = create_plan_and_execute(model, [add, lookup]).invoke({"messages": ["Who is the CEO, and what is 40 + 2?"]})
    assert out["past_steps"] == [("find the CEO", "The CEO is Ada Lovelace."), ("add 40 and 2", "It is 42.")]
    assert out["messages"][-1].content == "Ada Lovelace, and 42." and out["replans"] == 1 and out["plan"] == []
    executor_task = model.calls[4]["messages"][-1].content
    assert "Your task now: add 40 and 2" in executor_task and "find the CEO: The CEO is Ada Lovelace." in executor_task
    assert model.calls[0]["response_format"].__name__ == "Plan" and model.calls[1]["tools"] == ["add", "lookup"]


def test_replanning_is_bounded():
    model = ScriptedChatModel(['{"steps": ["step a", "step b"]}', "A done.", "B done."])
    out = create_plan_and_execute(model, [add], max_replans=0).invoke({"messages": ["do a then b"]})
    assert out["messages"][-1].content == "B done." and len(model.calls) == 3
    with pytest.raises(ValueError, match="max_replans"):
        create_plan_and_execute(model, [add], max_replans=-1)


def test_chain_of_thought_then_a_structured_answer():
    class Answer(BaseModel):
        value: int

    model = ScriptedChatModel(["Two apples plus two apples make four apples.", '{"value": 4}'])
    out = create_cot_agent(model, Answer).invoke({"messages": ["2 apples + 2 apples?"]})
    assert out["reasoning"] == "Two apples plus two apples make four apples."
    assert out["structured_response"] == Answer(value=4) and out["messages"][-1].content == '{"value":4}'
    assert "Two apples plus" in model.calls[1]["messages"][-1].content and model.calls[1]["response_format"] is Answer


def test_reflection_revises_until_the_critic_is_satisfied():
    model = ScriptedChatModel(["It is 100.", '{"ok": false, "feedback": "give the unit"}', "It is 100 degrees C.",
                               '{"ok": true, "feedback": ""}'])
    out = create_reflection_agent(model).invoke({"messages": ["At what temperature does water boil?"]})
    assert [m.content for m in out["messages"]] == ["At what temperature does water boil?", "It is 100 degrees C."]
    assert out["revisions"] == 1 and out["critiques"] == ["give the unit", ""]
    assert "give the unit" in model.calls[2]["messages"][-1].content


def test_reflection_stops_after_max_revisions():
    critic = ScriptedChatModel(['{"ok": false, "feedback": "shorter"}'] * 3)
    writer = ScriptedChatModel(["draft", "revision 1"])
    out = create_reflection_agent(writer, critic=critic, max_revisions=1).invoke({"messages": ["write"]})
    assert out["messages"][-1].content == "revision 1" and out["revisions"] == 1 and len(critic.calls) == 2
