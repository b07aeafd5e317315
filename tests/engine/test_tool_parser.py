"""Function calling without a model: tool specs, call grammars, prompt rendering, the streaming parser."""

from __future__ import annotations

import json

import llguidance
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from agentforge.engine import InvalidRequestError
from agentforge.engine.structured import compile_grammar
from agentforge.engine.tool_format import (
    BUILTIN_TOOL_PROMPT,
    HERMES,
    LLAMA3,
    MISTRAL,
    ToolCalling,
    ToolCallParser,
    detect_format,
    parse_tool_calls,
    render_messages,
    tool_spec,
    tool_specs,
)


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
        ToolCalling.create(tools, choice, True, None)


# --- grammars --------------------------------------------------------------------------------


def call_text(fmt, calls: list[tuple[str, dict]], prefix: str = "") -> str:
    objs = [json.dumps({"name": n, fmt.arguments_key: a}) for n, a in calls]
    if fmt is HERMES:
        return prefix + "\n".join(f"<tool_call>\n{o}\n</tool_call>" for o in objs)
    if fmt is MISTRAL:
        return prefix + "[TOOL_CALLS][" + ", ".join(objs) + "]"
    return prefix + "; ".join(objs)


@pytest.fixture(scope="module")
def accepts(smollm2_tokenizer):
    tokenizer = llguidance.hf.from_tokenizer(smollm2_tokenizer)

    def accepts(calling: ToolCalling, text: str) -> bool:
        matcher = llguidance.LLMatcher(tokenizer, compile_grammar(calling.constraint()))
        ok = all(matcher.consume_token(t) for t in smollm2_tokenizer.encode(text, add_special_tokens=False))
        return ok and matcher.is_accepting()

    return accepts


@pytest.mark.parametrize("fmt", [HERMES, LLAMA3, MISTRAL], ids=lambda f: f.name)
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
    calling = ToolCalling([WEATHER], "required", True, HERMES)
    from agentforge.engine import StructuredOutput

    with pytest.raises(InvalidRequestError, match="only be combined"):
        calling.constraint(StructuredOutput(json_object=True))
    with pytest.raises(InvalidRequestError, match="JSON schema or json_object"):
        ToolCalling([WEATHER], "auto", True, HERMES).constraint(StructuredOutput(regex="a+"))


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
    calling = ToolCalling.create([get_weather], "auto", True, template)
    assert (calling.format, calling.template_renders_tools) == (HERMES, True)
    messages, kwargs = calling.render(HISTORY)
    assert kwargs == {"tools": [WEATHER]}
    text = smollm2_tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, **kwargs)
    assert text.startswith("TOOL get_weather\nuser: Weather in Oslo and Rome?|")
    assert "<tool_call>get_weather Oslo</tool_call><tool_call>get_weather Rome</tool_call>" in text
    assert detect_format("{{ tools }} [TOOL_CALLS]")[0] is MISTRAL
    assert detect_format("{{ tools }} <|python_tag|>")[0] is LLAMA3


# --- parsing ---------------------------------------------------------------------------------


def test_parses_hermes_calls_with_text_around_them():
    text = (
        'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Pa\\"ris}"}}\n</tool_call>\n'
        '<tool_call>\n{"arguments": {"query": "x"}, "name": "Search"}\n</tool_call>\nDone.'
    )
    content, calls = parse_tool_calls(text, HERMES, id_prefix="t")
    assert content == "Let me check.Done."
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("call_t0", "get_weather", {"city": 'Pa"ris}'}),
        ("call_t1", "Search", {"query": "x"}),
    ]
    assert calls[0].function.arguments == '{"city": "Pa\\"ris}"}'  # the model's own text


def test_parses_llama3_and_mistral_calls():
    content, calls = parse_tool_calls('<|python_tag|>{"name": "f", "parameters": {"a": 1}}; {"name": "g", "parameters": {}}', LLAMA3)
    assert content == "" and [(c.function.name, c.function.arguments) for c in calls] == [("f", '{"a": 1}'), ("g", "{}")]
    content, calls = parse_tool_calls(' {"name": "f", "parameters": {"a": [1, {"b": "}"}]}}', LLAMA3)
    assert content == "" and calls[0].function.arguments == '{"a": [1, {"b": "}"}]}'
    assert parse_tool_calls("The answer is {x}.", LLAMA3) == ("The answer is {x}.", [])
    content, calls = parse_tool_calls('Sure. [TOOL_CALLS][{"name": "f", "arguments": {"a": 1}}, {"name": "g", "arguments": {}}]', MISTRAL)
    assert content == "Sure." and [c.function.name for c in calls] == ["f", "g"]


def test_what_is_not_a_call_stays_text():
    assert parse_tool_calls("a <tool_call>\n[1, 2]\n</tool_call>", HERMES)[0] == "a[1, 2]"
    assert parse_tool_calls('x <tool_call>\n{"nam": 1}\n</tool_call> y', HERMES)[0] == 'x{"nam": 1}y'
    assert parse_tool_calls("1 < 2 and <tool is a word", HERMES) == ("1 < 2 and <tool is a word", [])
    content, calls = parse_tool_calls('<tool_call>\n{"name": "f", "arguments": {"a": "unfinished', HERMES)
    assert content == "" and calls[0].function.arguments == '{"a": "unfinished'  # cut off by max_tokens


def test_streaming_holds_back_partial_tags_and_emits_names_once():
    parser = ToolCallParser(HERMES, id_prefix="s")
    assert parser.feed("Hi <tool").text == "Hi"
    delta = parser.feed('_call>\n{"name": "get_weather", "argu')
    assert delta.text == "" and delta.tool_calls == []
    delta = parser.feed('ments": {"city": "Pa')
    assert [(d.index, d.id, d.name, d.arguments) for d in delta.tool_calls] == [(0, "call_s0", "get_weather", '{"city": "Pa')]
    delta = parser.feed('ris"}}\n</tool_call>')
    assert [(d.index, d.id, d.name, d.arguments) for d in delta.tool_calls] == [(0, None, None, 'ris"}')]
    assert parser.finish().text == ""
    assert parser.content == "Hi"


# --- property: any chunking streams to the whole parse ---------------------------------------

FORMATS = {"hermes": HERMES, "llama3_json": LLAMA3, "mistral": MISTRAL}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(st.characters(codec="utf-8"), max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
CALLS = st.lists(
    st.tuples(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_.-]{0,11}", fullmatch=True),
              st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=4), st.booleans(), st.booleans()),
    min_size=0, max_size=3,
)
TRICKY = ["<", "<tool", "<tool_call>", "</tool_call>", "</tool", "[TOOL_CALLS]", "[", "]", "{", "}", '"', "\\",
          "<|python_tag|>", " ", "\n", ";", ",", "a", "é", "日本", "🙂"]
TEXT = st.lists(st.sampled_from(TRICKY[-9:]) | st.text(max_size=4), max_size=6).map("".join)
NOISE = st.lists(st.sampled_from(TRICKY) | st.text(max_size=3), max_size=30).map("".join)


def render_call(fmt, name, args, arguments_first, compact):
    key = fmt.arguments_key
    obj = {key: args, "name": name} if arguments_first else {"name": name, key: args}
    return json.dumps(obj, separators=(",", ":") if compact else None, ensure_ascii=compact)


def stream(fmt, text, cuts):
    """Feed `text` in chunks cut at `cuts`; reassemble the deltas the way an OpenAI client does."""
    parser, content, calls = ToolCallParser(fmt, id_prefix="p"), "", {}
    bounds = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    chunks = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    for delta in [parser.feed(c) for c in chunks] + [parser.finish()]:
        content += delta.text
        for d in delta.tool_calls:
            if d.id is not None:
                assert d.index not in calls and d.index == len(calls)  # id and name come once, in order
                calls[d.index] = [d.id, d.name, ""]
            calls[d.index][2] += d.arguments
    return content, [tuple(c) for c in calls.values()]


def whole(fmt, text):
    content, calls = parse_tool_calls(text, fmt, id_prefix="p")
    return content, [(c.id, c.function.name, c.function.arguments) for c in calls]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(FORMATS)), NOISE, st.lists(st.integers(0, 10_000), max_size=12))
def test_any_chunking_of_any_text_streams_to_the_whole_parse(fmt_name, text, cuts):
    fmt = FORMATS[fmt_name]
    assert stream(fmt, text, cuts) == whole(fmt, text)
    assert stream(fmt, text, range(len(text))) == whole(fmt, text)  # one character at a time


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(FORMATS)), TEXT, CALLS, TEXT, st.lists(st.integers(0, 10_000), max_size=12))
def test_text_and_calls_are_recovered_from_any_chunking(fmt_name, before, calls, after, cuts):
    fmt = FORMATS[fmt_name]
    for t in (before, after):
        assume(fmt.open not in t and "<|python_tag|>" not in t)
    objs = [render_call(fmt, *c) for c in calls]
    if fmt is HERMES:
        text = before + "".join(f"\n<tool_call>\n{o}\n</tool_call>\n" for o in objs) + after
        expected_text = (before.rstrip() + after.lstrip()) if calls else before + after
    elif fmt is MISTRAL:
        text = before + (f" [TOOL_CALLS][{', '.join(objs)}] " if calls else "") + after
        expected_text = (before.rstrip() + after.lstrip()) if calls else before + after
    else:  # Llama 3: the answer is either calls or text
        assume(not before.lstrip().startswith("{"))
        text = "; ".join(objs) if calls else before
        expected_text = "" if calls else before
    content, parsed = stream(fmt, text, cuts)
    assert (content, parsed) == whole(fmt, text)
    assert content == expected_text
    assert [(name, json.loads(arguments)) for _, name, arguments in parsed] == [(c[0], c[1]) for c in calls]
    assert len({call_id for call_id, _, _ in parsed}) == len(parsed)
