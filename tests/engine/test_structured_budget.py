"""Constrained output that always parses: the budget never cuts JSON, whatever the schema leaves unbounded.

A constrained sequence near its `max_tokens` follows its closing path (`engine/closing.py`): the
output parses and validates, and finish_reason says "length" when the budget forced the ending.
"""

from __future__ import annotations

import json

import jsonschema
import llguidance
import llguidance.hf
import pytest

from agentforge.engine import InvalidRequestError, SamplingParams, StructuredOutput
from agentforge.engine.closing import Closer, JsonScan
from agentforge.engine.structured import INT64_BOUND, compile_grammar, decoding_schema

INT, NUM, STR, BOOL = {"type": "integer"}, {"type": "number"}, {"type": "string"}, {"type": "boolean"}


def obj(required: dict, optional: dict | None = None) -> dict:
    return {"type": "object", "properties": {**required, **(optional or {})}, "required": list(required)}


def arr(items: dict, **bounds) -> dict:
    return {"type": "array", "items": items, **bounds}


# Nothing below bounds a string's length, an integer's or a number's size, or an array's length
# unless the line says so: the budget alone must end them.
SCHEMAS = [
    obj({"items": arr(INT), "note": STR}),
    obj({"name": STR, "age": INT}),
    obj({"title": STR, "body": STR, "tags": arr(STR)}),
    obj({"x": NUM, "y": NUM, "z": NUM}),
    obj({"values": arr(NUM)}),
    obj({"matrix": arr(arr(INT))}),
    obj({"user": obj({"id": INT, "email": STR, "roles": arr(STR)})}),
    obj({"a": obj({"b": obj({"c": obj({"d": STR})})})}),
    obj({"people": arr(obj({"name": STR, "born": INT}))}),
    obj({"ok": BOOL, "reason": STR}),
    obj({"count": INT, "items": arr(obj({"sku": STR, "qty": INT, "price": NUM}))}),
    obj({"text": STR}, {"language": STR, "confidence": NUM}),
    obj({"id": {"anyOf": [INT, STR]}}),
    obj({"maybe": {"anyOf": [STR, {"type": "null"}]}, "n": INT}),
    obj({"kind": {"enum": ["cat", "dog", "bird"]}, "name": STR, "weight": NUM}),
    obj({"steps": arr(STR, minItems=2)}),
    obj({"pairs": arr(arr(NUM, minItems=2, maxItems=2))}),
    obj({"config": obj({"retries": INT, "timeout": NUM, "hosts": arr(STR)})}),
    obj({"event": STR, "at": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}, "guests": arr(STR)}),
    obj({"summary": STR, "scores": arr(INT, minItems=1)}),
    arr(INT),
    arr(STR),
    arr(obj({"k": STR, "v": INT})),
    INT,
    NUM,
    STR,
    obj({"deep": arr(obj({"inner": arr(obj({"leaf": STR}))}))}),
    obj({"first": STR, "second": STR, "third": STR, "fourth": STR}),
    obj({"big": INT, "bigger": INT, "biggest": INT}),
    obj({"lat": NUM, "lon": NUM, "label": STR, "visits": INT}),
    obj({"question": STR, "answers": arr(obj({"text": STR, "correct": BOOL}))}),
    obj({"meta": obj({"created": INT, "author": obj({"name": STR, "url": STR})}), "content": STR}),
    obj({"words": arr(STR), "counts": arr(INT)}),
    obj({"status": {"const": "ok"}, "data": arr(NUM)}),
    obj({"code": INT, "message": STR, "details": obj({"field": STR, "hint": STR})}),
    obj({"nested": arr(arr(arr(INT)))}),
    obj({"flag": BOOL, "level": INT, "path": arr(STR), "extra": obj({"note": STR})}),
    obj({"recipe": STR, "ingredients": arr(obj({"name": STR, "grams": NUM})), "steps": arr(STR)}),
    obj({"from": STR, "to": STR, "amount": NUM, "memo": STR}),
    obj({"records": arr(obj({"id": INT, "tags": arr(STR), "score": NUM}), minItems=1)}),
    obj({"headline": STR, "subheadline": STR, "paragraphs": arr(STR, minItems=2)}),
]
BUDGETS = [48, 64, 96, 128, 160]
PROMPT = "Write a long, detailed JSON document with very big numbers and long strings:"


def test_the_schemas_are_varied_and_unbounded():
    assert len(SCHEMAS) >= 40
    text = json.dumps(SCHEMAS)
    assert "maxLength" not in text and "maximum" not in text
    for kind in ('"integer"', '"number"', '"string"', '"array"', '"anyOf"'):
        assert kind in text


@pytest.mark.slow
def test_every_constrained_output_parses_and_validates_within_its_budget(smollm2):
    prompts, params = [], []
    for i, schema in enumerate(SCHEMAS):
        for seed in range(2):
            prompts.append(PROMPT)
            params.append(SamplingParams(temperature=1.0, seed=seed, max_tokens=BUDGETS[(i + seed) % len(BUDGETS)],
                                         structured=StructuredOutput(json=schema)))
    outputs = smollm2.generate(prompts, params)
    forced = 0
    for out, p in zip(outputs, params):
        completion = out.outputs[0]
        assert completion.finish_reason in ("stop", "length"), completion
        assert len(completion.token_ids) <= p.max_tokens
        jsonschema.validate(json.loads(completion.text), p.structured.json)
        forced += completion.finish_reason == "length"
    assert forced >= len(outputs) // 4  # the budget really was what ended many of them


@pytest.mark.slow
def test_tool_call_arguments_always_parse_and_validate_under_required(smollm2):
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": "Record data.",
                                                 "parameters": schema}}
             for i, schema in enumerate(s for s in SCHEMAS if s.get("type") == "object")][:12]
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    conversations = [[{"role": "user", "content": f"Record everything you know about topic {i}, in detail."}]
                     for i in range(len(BUDGETS))]
    for seed in range(2):
        params = [SamplingParams(temperature=1.0, seed=seed, max_tokens=b) for b in BUDGETS]
        for out in smollm2.chat(conversations, params, tools=tools, tool_choice="required"):
            completion = out.outputs[0]
            assert completion.finish_reason in ("tool_calls", "length") and completion.tool_calls, completion
            assert completion.text == ""
            for call in completion.tool_calls:
                jsonschema.validate(json.loads(call.function.arguments), by_name[call.function.name])


def test_a_budget_too_small_for_any_valid_output_is_refused_up_front(smollm2):
    schema = obj({"name": STR, "age": INT})
    with pytest.raises(InvalidRequestError, match="max_tokens=4 is too small.*shortest one takes"):
        smollm2.generate("x", SamplingParams(max_tokens=4, structured=StructuredOutput(json=schema)))
    tools = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
    with pytest.raises(InvalidRequestError, match="too small"):
        smollm2.chat([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=5), tools=tools, tool_choice="required")
    assert smollm2.engine.requests == {}


def test_integers_without_bounds_stay_in_int64_unless_the_schema_says_otherwise():
    schema = decoding_schema(obj({"n": INT, "m": {"type": "integer", "minimum": 0}, "k": arr(INT)}))
    assert schema["properties"]["n"] == {"type": "integer", "minimum": -INT64_BOUND, "maximum": INT64_BOUND}
    assert schema["properties"]["m"] == {"type": "integer", "minimum": 0, "maximum": INT64_BOUND}
    assert schema["properties"]["k"]["items"]["maximum"] == INT64_BOUND
    assert schema["additionalProperties"] is False
    named = decoding_schema(obj({"properties": INT}))  # a property may be called "properties"
    assert set(named["properties"]) == {"properties"}


def test_the_closing_path_is_the_shortest_valid_ending(smollm2_tokenizer):
    tokenizer = llguidance.hf.from_tokenizer(smollm2_tokenizer)
    closer = Closer(smollm2_tokenizer, tokenizer)
    schema = obj({"items": arr(INT), "note": STR, "user": obj({"id": INT})})
    matcher = llguidance.LLMatcher(tokenizer, compile_grammar(StructuredOutput(json=schema)))
    prefix = '{"items": [1, 100, 1023'
    assert matcher.consume_tokens(smollm2_tokenizer.encode(prefix, add_special_tokens=False))
    scan = JsonScan()
    scan.feed(prefix)
    path = closer.path(matcher, scan, 64)
    ending = smollm2_tokenizer.decode(path)
    assert json.loads(prefix + ending) == {"items": [1, 100, 1023], "note": "", "user": {"id": 0}}
    assert closer.path(matcher, scan, len(path) - 1) is None  # no shorter ending was found
    assert not matcher.is_accepting()  # the matcher itself did not move


@pytest.mark.parametrize("fmt", ["hermes", "smollm2", "llama3_json", "mistral"])
def test_every_tool_format_has_a_short_closing_path_to_a_valid_call(smollm2_tokenizer, fmt):
    from agentforge.engine import ChatOptions
    from agentforge.engine.tool_format import ToolCalling
    from agentforge.engine.tool_parser import TOOL_FORMATS, parse_tool_calls

    tokenizer = llguidance.hf.from_tokenizer(smollm2_tokenizer)
    closer = Closer(smollm2_tokenizer, tokenizer)
    tools = [{"type": "function", "function": {"name": "record", "parameters": obj({"items": arr(INT), "note": STR})}}]
    calling = ToolCalling.create(ChatOptions(tools=tools, tool_choice="required"), None, fmt)
    matcher = llguidance.LLMatcher(tokenizer, compile_grammar(calling.calls_constraint()))
    path = closer.path(matcher, JsonScan(), 64)
    assert path is not None and len(path) < 40
    content, calls = parse_tool_calls(smollm2_tokenizer.decode(path), TOOL_FORMATS[fmt])
    assert content == "" and [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("record", {"items": [], "note": ""})]
