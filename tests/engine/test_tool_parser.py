"""The streaming tool-call parser: formats, text around calls, repeats, any chunking."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from agentforge.engine.tool_parser import HERMES, LLAMA3, MISTRAL, SMOLLM2, ToolCallParser, parse_tool_calls

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

FORMATS = {"hermes": HERMES, "smollm2": SMOLLM2, "llama3_json": LLAMA3, "mistral": MISTRAL}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(st.characters(codec="utf-8"), max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
CALLS = st.lists(  # distinct calls: a repeat ends the message (see the test above)
    st.tuples(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_.-]{0,11}", fullmatch=True),
              st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=4), st.booleans(), st.booleans()),
    min_size=0, max_size=3, unique_by=lambda c: (c[0], json.dumps(c[1])),
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
    cut_opener = any(after.rstrip().endswith(fmt.open[:k]) for k in range(1, len(fmt.open)))
    assume(not (calls and cut_opener))  # after calls, a partial opening tag at the end is a cut-off call
    objs = [render_call(fmt, *c) for c in calls]
    if fmt is HERMES:
        text = before + "".join(f"\n<tool_call>\n{o}\n</tool_call>\n" for o in objs) + after
        expected_text = (before.rstrip() + after.lstrip()) if calls else before + after
    elif fmt is SMOLLM2:
        listed = ",\n".join(objs)
        text = before + (f"\n<tool_call>[\n{listed}\n]</tool_call>\n" if calls else "") + after
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


def test_parses_smollm2_lists_of_calls_and_empty_lists():
    text = ('<tool_call>[\n{"name": "f", "arguments": {"a": 1}},\n{"name": "g", "arguments": {}}\n]</tool_call>')
    content, calls = parse_tool_calls(text, SMOLLM2)
    assert content == "" and [(c.function.name, c.function.arguments) for c in calls] == [("f", '{"a": 1}'), ("g", "{}")]
    assert parse_tool_calls("<tool_call>[]</tool_call>\nNo function fits.", SMOLLM2) == ("No function fits.", [])


def test_a_repeated_call_is_never_emitted_and_ends_the_message():
    call = '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>\n'
    other = '<tool_call>\n{"name": "f", "arguments": {"a": 12}}\n</tool_call>\n'
    parser = ToolCallParser(HERMES, id_prefix="r")
    deltas = [parser.feed(call), parser.feed(other)]
    assert not parser.repeated and len(parser.tool_calls) == 2  # a prefix of an earlier call is released once it differs
    held = parser.feed('<tool_call>\n{"name": "f", "arguments": {"a": 1')
    assert held.tool_calls == []  # could still repeat the first call: held back
    done = parser.feed('}}\n</tool_call>\nMore text.')
    assert parser.repeated and done.tool_calls == [] and done.text == ""
    assert parser.finish().text == "" and parser.content == ""
    assert [d.arguments for d in deltas[1].tool_calls] == ['{"a": 12}']
    assert [c.function.arguments for c in parser.tool_calls] == ['{"a": 1}', '{"a": 12}']


def test_the_unfinished_start_of_a_call_is_never_text():
    for text in ['<tool_call>\n{"name', '<tool_call>\n{"na', '<tool_call>\n{"arguments": {"a": 1}, "name"']:
        content, calls = parse_tool_calls(text, HERMES)
        assert content == "" and calls == [], text
