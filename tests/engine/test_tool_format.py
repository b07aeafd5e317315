"""Per-request function calling: formats, call grammars, prompt rendering, the auto decision's plan."""

from __future__ import annotations

import json

import llguidance
import pytest
from pydantic import BaseModel, Field

from agentforge.engine import ChatOptions, InvalidRequestError, StructuredOutput
from agentforge.engine.structured import compile_grammar
from agentforge.engine.tool_format import (
    BUILTIN_TOOL_PROMPT,
    CONTENT_FREE,
    SMOLLM2_TOOL_PROMPT,
    ToolCalling,
    detect_format,
    prepare_chat,
    render_messages,
    write_calls,
)
from agentforge.engine.tool_parser import HERMES, LLAMA3, MISTRAL, SMOLLM2
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


@pytest.mark.parametrize(
    "tools, choice, problem",
    [
        (None, "required", "tool_choice needs tools"),
        ([get_weather], "always", "tool_choice must be"),
        ([get_weather], {"type": "function", "function": {"name": "nope"}}, "not among the tools"),
    ],
)
def test_invalid_tool_choice_is_refused(tools, choice, problem):
    with pytest.raises(InvalidRequestError, match=problem):
        ToolCalling.create(ChatOptions(tools=tools, tool_choice=choice), None)



# --- grammars --------------------------------------------------------------------------------


def call_text(fmt, calls: list[tuple[str, dict]], prefix: str = "") -> str:
    return prefix + write_calls(fmt, calls)


def constraint(calling: ToolCalling) -> StructuredOutput:
    return calling.answer_constraint(None) if calling.choice == "auto" else calling.calls_constraint()


@pytest.fixture(scope="module")
def accepts(smollm2_tokenizer):
    tokenizer = llguidance.hf.from_tokenizer(smollm2_tokenizer)

    def accepts(calling: ToolCalling | StructuredOutput, text: str) -> bool:
        structured = calling if isinstance(calling, StructuredOutput) else constraint(calling)
        matcher = llguidance.LLMatcher(tokenizer, compile_grammar(structured))
        ok = all(matcher.consume_token(t) for t in smollm2_tokenizer.encode(text, add_special_tokens=False))
        return ok and matcher.is_accepting()

    return accepts


@pytest.mark.parametrize("fmt", [HERMES, SMOLLM2, LLAMA3, MISTRAL], ids=lambda f: f.name)
def test_call_grammars_allow_exactly_what_tool_choice_allows(accepts, fmt):
    def calling(choice, parallel=True):
        return ToolCalling([WEATHER, SEARCH], choice, parallel, fmt)

    paris = ("get_weather", {"city": "Paris"})
    rome = ("get_weather", {"city": "Rome", "unit": "celsius"})
    search = ("Search", {"query": "llamas"})
    for choice in ("required", "auto"):
        assert accepts(calling(choice), call_text(fmt, [paris]))
        assert accepts(calling(choice), call_text(fmt, [paris, rome, search]))
        assert not accepts(calling(choice, parallel=False), call_text(fmt, [paris, rome]))
        assert not accepts(calling(choice), call_text(fmt, [("get_time", {})]))  # undeclared tool
        assert not accepts(calling(choice), call_text(fmt, [("get_weather", {"town": "Paris"})]))  # bad arguments
        assert not accepts(calling(choice), call_text(fmt, [("get_weather", {"city": "Paris", "extra": 1})]))
        assert not accepts(calling(choice), call_text(fmt, [("Search", {"query": "x" * 31})]))  # maxLength
    assert not accepts(calling("required"), "It is sunny.")
    assert accepts(calling("auto"), "It is sunny.")
    assert accepts(calling("auto"), "")
    assert accepts(calling("get_weather"), call_text(fmt, [paris]))
    assert not accepts(calling("get_weather"), call_text(fmt, [search]))
    assert not accepts(calling("get_weather"), call_text(fmt, [paris, paris]))
    if fmt is not LLAMA3:  # text before a call; once the tag opens, the call is constrained
        assert accepts(calling("auto"), call_text(fmt, [paris], prefix="Let me look. "))
        assert not accepts(calling("auto"), "Let me look. " + fmt.open + "{nonsense")


@pytest.mark.parametrize("fmt", [HERMES, SMOLLM2, LLAMA3, MISTRAL], ids=lambda f: f.name)
def test_an_answer_decided_before_the_reply_never_opens_a_call(accepts, fmt):
    calling = ToolCalling([WEATHER, SEARCH], "auto", True, fmt)
    answer_only = calling.answer_only_constraint(None)
    paris = call_text(fmt, [("get_weather", {"city": "Paris"})])
    assert accepts(answer_only, "It is sunny.") and accepts(answer_only, "")
    assert accepts(answer_only, "Tags such as <tool> or [TOOL] are fine, and so is {this}.")
    assert accepts(calling, paris) and not accepts(answer_only, paris)
    assert not accepts(answer_only, "Let me look. " + fmt.open)
    assert not accepts(answer_only, fmt.open[:-1] + ' call="get_weather">Paris' + fmt.open[-1])  # a tag of its own
    assert not accepts(answer_only, "Let me look. " + fmt.open.swapcase())  # or in another letter case
    assert not accepts(answer_only, fmt.open[:3] + fmt.open[3:].title())  # `<tool_Call>`
    assert not accepts(answer_only, fmt.open[:6] + " " + fmt.open[6:])  # `<tool_ call>`, the tool adapter's slip
    if fmt is not LLAMA3:  # Llama 3's bare JSON calls open only at the start of the answer
        assert not accepts(answer_only, "Let me look. " + paris)
    json_answer = StructuredOutput(json={"type": "object", "properties": {"a": {"type": "integer"}}})
    assert calling.answer_only_constraint(json_answer) == json_answer  # a JSON answer has no call in it anyway


def test_defs_of_several_tools_are_kept_apart(accepts):
    class Place(BaseModel):
        city: str

    class Trip(BaseModel):
        start: Place
        end: Place

    class Ship(BaseModel):
        start: int

    class Place2(BaseModel):
        port: str

    class Cruise(BaseModel):
        place: Place2
        ship: Ship

    calling = ToolCalling(tool_specs([Trip, Cruise]), "required", True, HERMES)
    trip = ("Trip", {"start": {"city": "A"}, "end": {"city": "B"}})
    cruise = ("Cruise", {"place": {"port": "C"}, "ship": {"start": 3}})
    assert accepts(calling, call_text(HERMES, [trip, cruise]))
    assert not accepts(calling, call_text(HERMES, [("Cruise", {"place": {"city": "C"}, "ship": {"start": 3}})]))


def test_response_format_only_combines_with_auto():
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(InvalidRequestError, match="only be combined"):
        prepare_chat(messages, ChatOptions(tools=[WEATHER], tool_choice="required",
                                           response_format={"type": "json_object"}), None, None)
    with pytest.raises(InvalidRequestError, match="JSON schema or json_object"):
        ToolCalling([WEATHER], "auto", True, HERMES).answer_constraint(StructuredOutput(regex="a+"))


# --- rendering -------------------------------------------------------------------------------

HISTORY = [
    {"role": "user", "content": "Weather in Oslo and Rome?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
        {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
    ]},
    {"role": "tool", "tool_call_id": "a", "content": "-3 C"},
    {"role": "tool", "tool_call_id": "b", "content": "18 C"},
]


def test_builtin_prompt_renders_tools_calls_and_results_for_templates_without_tools():
    assert detect_format("{% for m in messages %}{{ m.content }}{% endfor %}") == (HERMES, False)
    messages, kwargs = render_messages(HISTORY, [WEATHER], HERMES, False)
    assert kwargs == {}
    assert messages[0]["role"] == "system"
    assert messages[0]["content"] == BUILTIN_TOOL_PROMPT.format(tools=json.dumps(WEATHER))
    assert messages[2] == {"role": "assistant", "content": (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>')}
    assert messages[3] == {"role": "user", "content": (
        "<tool_response>\n-3 C\n</tool_response>\n<tool_response>\n18 C\n</tool_response>")}
    assert len(messages) == 4
    with_system, _ = render_messages([{"role": "system", "content": "Be brief."}] + HISTORY, [WEATHER], HERMES, False)
    assert with_system[0]["content"].startswith("Be brief.\n\nYou can call functions")


def test_templates_that_render_tools_get_them(smollm2_tokenizer):
    template = (
        "{% for t in tools %}TOOL {{ t.function.name }}\n{% endfor %}"
        "{% for m in messages %}{{ m.role }}: {{ m.content }}"
        "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function.name }} {{ c.function.arguments.city }}"
        "</tool_call>{% endfor %}|{% endfor %}"
    )
    calling = ToolCalling.create(ChatOptions(tools=[get_weather]), template)
    assert (calling.format, calling.template_renders_tools) == (HERMES, True)
    messages, kwargs = calling.render(HISTORY)
    assert kwargs == {"tools": [WEATHER]}
    text = smollm2_tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, **kwargs)
    assert text.startswith("TOOL get_weather\nuser: Weather in Oslo and Rome?|")
    assert "<tool_call>get_weather Oslo</tool_call><tool_call>get_weather Rome</tool_call>" in text
    assert detect_format("{{ tools }} [TOOL_CALLS]")[0] is MISTRAL
    assert detect_format("{{ tools }} <|python_tag|>")[0] is LLAMA3


def test_smollm2_format_renders_its_model_card_prompt_and_list_of_calls(smollm2_tokenizer):
    fmt, renders = detect_format(smollm2_tokenizer.chat_template)
    assert not renders  # SmolLM2's template has no tools: the engine renders them
    messages, _ = render_messages(HISTORY, [WEATHER], SMOLLM2, False)
    assert messages[0]["content"] == SMOLLM2_TOOL_PROMPT.format(tools=json.dumps([WEATHER]))
    assert messages[2]["content"] == (
        '<tool_call>[\n{"name": "get_weather", "arguments": {"city": "Oslo"}},\n'
        '{"name": "get_weather", "arguments": {"city": "Rome"}}\n]</tool_call>')
    assert messages[3]["content"] == "<tool_response>\n-3 C\n</tool_response>\n<tool_response>\n18 C\n</tool_response>"


def test_auto_plans_both_branches_and_a_content_free_baseline():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}]
    plan = prepare_chat(messages, ChatOptions(tools=[get_weather]), None, None)
    assert plan.tool_calling.choice == "auto"
    assert "TEXT" in plan.structured.grammar and "TEXT" not in plan.call_structured.grammar
    assert [m["role"] for m in plan.baseline_messages] == ["system", "user"]
    assert plan.baseline_messages[0] == plan.messages[0]  # same system prompt and tools
    assert plan.baseline_messages[1]["content"] == CONTENT_FREE
    required = prepare_chat(messages, ChatOptions(tools=[get_weather], tool_choice="required"), None, None)
    assert required.call_structured is None and required.baseline_messages is None
    assert required.structured == plan.call_structured
    none = prepare_chat(messages, ChatOptions(tools=[get_weather], tool_choice="none"), None, None)
    assert none.structured is None and none.messages[0]["content"] == "Be brief."  # no tools in the prompt


def test_unknown_chat_options_are_refused():
    with pytest.raises(InvalidRequestError, match="unknown chat option"):
        ChatOptions.of({"tool": [get_weather]})
    with pytest.raises(InvalidRequestError, match="parallel_tool_calls"):
        ChatOptions(parallel_tool_calls="yes")


@pytest.mark.parametrize("renders_tools", [False, True])
def test_content_parts_become_text_and_unreadable_parts_are_refused(renders_tools):
    parts = [{"type": "text", "text": "What is "}, {"type": "text", "text": "6 * 7?"}]
    rendered, _ = render_messages([{"role": "user", "content": parts}], None, HERMES, renders_tools)
    assert rendered[-1]["content"] == "What is 6 * 7?"
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    with pytest.raises(InvalidRequestError, match="reads text only: a 'image_url'"):
        render_messages([{"role": "user", "content": [parts[0], image]}], None, HERMES, renders_tools)
    with pytest.raises(InvalidRequestError, match="unsupported content part"):
        render_messages([{"role": "user", "content": [{"type": "txt", "text": "hi"}]}], None, HERMES, renders_tools)



def test_a_request_without_tools_reads_content_parts_as_text_too():
    parts = [{"type": "text", "text": "Say "}, {"type": "text", "text": "hi"}]
    plan = prepare_chat([{"role": "user", "content": parts}], ChatOptions(), None, None)
    assert plan.messages[-1]["content"] == "Say hi"
    image = {"type": "image_url", "image_url": {"url": "file:///tmp/cat.png"}}
    with pytest.raises(InvalidRequestError, match="reads text only"):
        prepare_chat([{"role": "user", "content": [image]}], ChatOptions(), None, None)
