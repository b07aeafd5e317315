"""Tools: schemas from hints and docstrings, validation, errors and timeouts as results, ToolNode in a graph."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from agentforge.engine import InvalidRequestError
from agentforge.graphs import END, START, MessagesState, StateGraph
from agentforge.tools import Tool, ToolNode, tool, tools_condition


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Get the current weather in a city.

    Args:
        city: The city's name.
        unit: The temperature unit.
    """
    return {"city": city, "temperature": 21 if unit == "celsius" else 70, "unit": unit}


class SearchArgs(BaseModel):
    """Search the web."""

    query: str = Field(min_length=1, max_length=50)
    limit: int = Field(default=3, ge=1, le=10)


def search(query: str, limit: int) -> list[str]:
    return [f"{query} #{i}" for i in range(limit)]


def test_schema_comes_from_hints_defaults_and_docstring():
    spec = get_weather.spec["function"]
    assert spec["name"] == "get_weather" and spec["description"] == "Get the current weather in a city."
    assert spec["parameters"]["required"] == ["city"]
    assert spec["parameters"]["properties"]["unit"] == {
        "default": "celsius", "description": "The temperature unit.", "enum": ["celsius", "fahrenheit"], "type": "string"}
    t = Tool(search, args_schema=SearchArgs)
    assert t.description == "Search the web." and t.parameters["properties"]["limit"]["maximum"] == 10


def test_results_are_text_for_the_model_and_data_for_code():
    result = get_weather.invoke({"city": "Paris"})
    assert not result.is_error and json.loads(result.content) == {"city": "Paris", "temperature": 21, "unit": "celsius"}
    assert result.data["city"] == "Paris"
    assert get_weather.invoke('{"city": "Oslo", "unit": "fahrenheit"}').data["temperature"] == 70
    assert Tool(search, args_schema=SearchArgs).invoke({"query": "llamas"}).data == ["llamas #0", "llamas #1", "llamas #2"]


@pytest.mark.parametrize(
    "arguments, problem",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({}, "city: Field required"),
        ({"city": "Paris", "unit": "kelvin"}, "unit: Input should be 'celsius' or 'fahrenheit'"),
    ],
)
def test_bad_arguments_become_error_results(arguments, problem):
    result = get_weather.invoke(arguments)
    assert result.is_error and problem in result.content


def test_exceptions_and_timeouts_become_error_results():
    @tool
    def broken(x: int) -> int:
        """Always fails."""
        raise RuntimeError("disk on fire")

    @tool(timeout=0.2)
    def slow() -> str:
        """Takes too long."""
        time.sleep(2)
        return "late"

    @tool(timeout=0.2)
    async def slow_async() -> str:
        """Takes too long, asynchronously."""
        await asyncio.sleep(2)
        return "late"

    assert broken.invoke({"x": 1}).content == "Error: RuntimeError: disk on fire"
    for t in (slow, slow_async):
        start = time.perf_counter()
        result = t.invoke({})
        assert result.is_error and "timed out after 0.2 s" in result.content
        assert time.perf_counter() - start < 1.5
        assert asyncio.run(t.ainvoke({})).is_error


def test_async_tools_and_ainvoke():
    @tool
    async def add(a: int, b: int) -> int:
        """Add two numbers."""
        await asyncio.sleep(0)
        return a + b

    assert add.invoke({"a": 2, "b": 3}).content == "5"
    assert asyncio.run(add.ainvoke('{"a": 1, "b": 1}')).data == 2
    assert asyncio.run(get_weather.ainvoke({"city": "Rome"})).data["city"] == "Rome"


def test_invalid_tool_definitions_are_refused():
    with pytest.raises(InvalidRequestError, match="invalid tool name"):
        Tool(search, name="no spaces allowed", args_schema=SearchArgs)
    with pytest.raises(InvalidRequestError, match="timeout"):
        Tool(search, args_schema=SearchArgs, timeout=-1)
    with pytest.raises(InvalidRequestError, match="callable"):
        Tool("not a function")


def assistant_calls(*calls):
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": json.dumps(a)}}
        for i, (n, a) in enumerate(calls)]}


def test_tool_node_runs_calls_in_parallel_and_answers_in_order():
    barrier = threading.Barrier(3, timeout=5)

    @tool
    def wait_for_others(n: int) -> int:
        """Returns n once three calls run at the same time."""
        barrier.wait()
        return n

    node = ToolNode([wait_for_others, get_weather])
    out = node({"messages": [assistant_calls(("wait_for_others", {"n": 1}), ("wait_for_others", {"n": 2}),
                                             ("wait_for_others", {"n": 3}), ("nope", {}),
                                             ("get_weather", {"city": 5}))]})
    messages = out["messages"]
    assert [m.tool_call_id for m in messages] == ["call_0", "call_1", "call_2", "call_3", "call_4"]
    assert [m.content for m in messages[:3]] == ["1", "2", "3"]
    assert "there is no tool named 'nope'" in messages[3].content and messages[3].status == "error"
    assert "city: Input should be a valid string" in messages[4].content


def test_a_react_loop_with_tool_node_in_a_graph():
    def model(state):
        last = state["messages"][-1]
        if last.role == "tool":
            return {"messages": [{"role": "assistant", "content": f"It is {json.loads(last.content)['temperature']}."}]}
        return {"messages": [assistant_calls(("get_weather", {"city": "Paris"}))]}

    g = StateGraph(MessagesState)
    g.add_node("model", model).add_node("tools", ToolNode([get_weather]))
    g.add_edge(START, "model").add_conditional_edges("model", tools_condition).add_edge("tools", "model")
    out = g.compile().invoke({"messages": [{"role": "user", "content": "Weather in Paris?"}]})
    assert [m.role for m in out["messages"]] == ["user", "assistant", "tool", "assistant"]
    assert out["messages"][-1].content == "It is 21."
    assert tools_condition(out) == END
