"""Tool specs from typed functions, pydantic models and dicts; invalid tools refused with the reason."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from agentforge.engine import InvalidRequestError
from agentforge.engine.tool_schema import tool_spec, tool_specs


def get_weather(city: str, unit: str = "celsius", days: int = 1) -> str:
    """Get the weather forecast for a city.

    Args:
        city: The city's name.
        unit: "celsius" or "fahrenheit".
        days (int): How many days
            to forecast.

    Returns:
        The forecast.
    """
    return ""


class Search(BaseModel):
    """Search the web."""

    query: str = Field(max_length=30)
    tags: list[str] = []


WEATHER = tool_spec(get_weather)
SEARCH = tool_spec(Search)


# --- tool specs ------------------------------------------------------------------------------


def test_tool_spec_from_a_typed_function_uses_hints_defaults_and_docstring():
    fn = WEATHER["function"]
    assert fn["name"] == "get_weather"
    assert fn["description"] == "Get the weather forecast for a city."
    params = fn["parameters"]
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {"type": "string", "description": "The city's name."}
    assert params["properties"]["days"]["type"] == "integer"
    assert params["properties"]["days"]["description"] == "How many days to forecast."
    assert params["properties"]["unit"]["default"] == "celsius"


def test_tool_spec_from_pydantic_and_dicts():
    assert SEARCH["function"]["name"] == "Search"
    assert SEARCH["function"]["description"] == "Search the web."
    assert SEARCH["function"]["parameters"]["properties"]["query"]["maxLength"] == 30
    openai = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    assert tool_spec(openai)["function"]["name"] == "f"
    bare = tool_spec({"name": "g", "description": "does g"})
    assert bare["function"]["parameters"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    "tools, problem",
    [
        ([{"name": "bad name!"}], "invalid tool name"),
        ([{"name": "f", "parameters": {"type": "array"}}], "type 'object'"),
        ([{"name": "f"}, {"name": "f"}], "unique"),
        ([{"type": "retrieval"}], "unsupported tool type"),
        ([42], "a tool must be"),
        ([{"name": "f", "parameters": "{not json"}], "not valid JSON"),
        ([], "non-empty list"),
    ],
)
def test_invalid_tools_are_refused_with_the_reason(tools, problem):
    with pytest.raises(InvalidRequestError, match=problem):
        tool_specs(tools)
