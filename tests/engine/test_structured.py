"""Grammar-constrained decoding: JSON schemas, regex, choice, Lark grammars; response_format."""

from __future__ import annotations

import json
import re
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from agentforge.engine import InvalidRequestError, SamplingParams, StructuredOutput

NAME = {"type": "string", "maxLength": 40}
SCHEMAS = [
    {"type": "object", "properties": {"name": NAME, "age": {"type": "integer"}}, "required": ["name", "age"]},
    {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
    {"type": "object", "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}}, "required": ["score"]},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 10, "maximum": 99}}, "required": ["n"]},
    {"type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]}}, "required": ["color"]},
    {"type": "object", "properties": {"tags": {"type": "array", "items": NAME, "minItems": 1, "maxItems": 3}},
     "required": ["tags"]},
    {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "integer"}, "minItems": 2,
                                             "maxItems": 4}}, "required": ["xs"]},
    {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}, "required": ["zip"]},
    {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"}},
     "required": ["code"]},
    {"type": "object", "properties": {"title": NAME, "subtitle": NAME}, "required": ["title"]},
    {"type": "object", "properties": {"user": {"type": "object", "properties": {"id": {"type": "integer"},
                                                                                  "email": NAME},
                                               "required": ["id", "email"]}}, "required": ["user"]},
    {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "object", "properties": {
        "c": {"type": "integer"}}, "required": ["c"]}}, "required": ["b"]}}, "required": ["a"]},
    {"type": "object", "properties": {"value": {"anyOf": [{"type": "integer"}, NAME]}}, "required": ["value"]},
    {"type": "object", "properties": {"id": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}},
     "required": ["id"]},
    {"type": "object", "properties": {"points": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
        "type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"]}}},
     "required": ["points"]},
    {"type": "object", "properties": {"status": {"const": "done"}, "count": {"type": "integer"}},
     "required": ["status", "count"]},
    {"type": "object", "properties": {"temp": {"type": "number", "exclusiveMinimum": -50, "exclusiveMaximum": 60},
                                      "unit": {"enum": ["C", "F"]}}, "required": ["temp", "unit"]},
    {"type": "object", "properties": {"word": {"type": "string", "minLength": 3, "maxLength": 8}},
     "required": ["word"]},
    {"type": "object", "properties": {"matrix": {"type": "array", "minItems": 1, "maxItems": 2, "items": {
        "type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "integer"}}}}, "required": ["matrix"]},
    {"type": "object", "properties": {"flags": {"type": "array", "items": {"type": "boolean"}, "maxItems": 3}},
     "required": ["flags"]},
    {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9}, "minItems": 3, "maxItems": 3},
    {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 1, "maxItems": 4},
    {"type": "string", "enum": ["north", "south", "east", "west"]},
    {"type": "integer", "minimum": -5, "maximum": 5},
    {"type": "boolean"},
    {"type": "object", "properties": {"date": {"type": "string", "pattern": "^20[0-9]{2}-[01][0-9]-[0-3][0-9]$"}},
     "required": ["date"]},
    {"type": "object", "properties": {"name": NAME, "nickname": {"anyOf": [NAME, {"type": "null"}]}},
     "required": ["name", "nickname"]},
    {"type": "object", "properties": {"kind": {"enum": ["cat", "dog"]}, "legs": {"type": "integer", "minimum": 0,
                                                                                   "maximum": 4}},
     "required": ["kind", "legs"]},
    {"type": "object", "properties": {"price": {"type": "number", "minimum": 0}, "currency": {"enum": ["EUR", "USD"]},
                                      "discount": {"type": "number", "minimum": 0, "maximum": 100}},
     "required": ["price", "currency"]},
    {"type": "object", "properties": {"steps": {"type": "array", "minItems": 2, "maxItems": 3, "items": {
        "type": "object", "properties": {"n": {"type": "integer"}, "text": NAME}, "required": ["n", "text"]}}},
     "required": ["steps"]},
    {"type": "object", "properties": {"hex": {"type": "string", "pattern": "^#[0-9a-f]{6}$"}}, "required": ["hex"]},
    {"type": "object", "properties": {"q": NAME, "answers": {"type": "array", "items": NAME, "minItems": 2,
                                                              "maxItems": 2}}, "required": ["q", "answers"]},
]


def test_there_are_at_least_30_varied_schemas():
    assert len(SCHEMAS) >= 30
    text = json.dumps(SCHEMAS)
    for feature in ('"anyOf"', '"enum"', '"pattern"', '"minItems"', '"maximum"', '"minimum"', '"required"'):
        assert feature in text


@pytest.mark.slow
def test_every_schema_output_validates_at_temperature_one(smollm2):
    prompts = [f"Write a JSON value for this schema: {json.dumps(s)}\n" for s in SCHEMAS]
    params = [SamplingParams(temperature=1.0, seed=i, max_tokens=300, structured=StructuredOutput(json=s))
              for i, s in enumerate(SCHEMAS)]
    outputs = smollm2.generate(prompts, params)
    for schema, out in zip(SCHEMAS, outputs):
        completion = out.outputs[0]
        assert completion.finish_reason == "stop", (schema, completion.text)
        jsonschema.validate(json.loads(completion.text), schema)


def test_regex_and_choice_always_match(smollm2):
    regex = r"[A-Z][a-z]{2,6} [0-9]{1,3}(\.[0-9])?"
    out = smollm2.generate("Name and number:", SamplingParams(n=6, temperature=1.0, seed=1, max_tokens=30,
                                                                 structured=StructuredOutput(regex=regex)))[0]
    assert all(re.fullmatch(regex, c.text) for c in out.outputs), [c.text for c in out.outputs]
    choices = ["positive", "negative", "neutral"]
    out = smollm2.generate("Sentiment of 'I love it':", SamplingParams(n=6, temperature=1.0, seed=2, max_tokens=10,
                                                                         structured=StructuredOutput(choice=choices)))[0]
    assert all(c.text in choices and c.finish_reason == "stop" for c in out.outputs)


def test_lark_grammar(smollm2):
    grammar = 'start: "Answer: " ANSWER\nANSWER: "yes" | "no"'
    out = smollm2.generate("Is water wet?", SamplingParams(temperature=1.0, seed=0, max_tokens=10,
                                                             structured=StructuredOutput(grammar=grammar)))
    assert out[0].outputs[0].text in ("Answer: yes", "Answer: no")


def test_constrained_and_free_requests_share_a_batch(smollm2):
    free = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
    alone = smollm2.generate("The weather today is", free)[0].outputs[0].token_ids
    mixed = smollm2.generate(
        ["The weather today is", "Pick one:"],
        [free, SamplingParams(temperature=1.0, max_tokens=5, structured=StructuredOutput(choice=["x", "y"]))],
    )
    assert mixed[0].outputs[0].token_ids == alone
    assert mixed[1].outputs[0].text in ("x", "y")


class Weather(BaseModel):
    city: str = Field(max_length=30)
    temperature_c: int = Field(ge=-60, le=60)
    sky: Literal["sunny", "cloudy", "rainy"]


def test_response_format_pydantic_returns_a_validated_instance(smollm2):
    out = smollm2.chat([{"role": "user", "content": "Weather in Rome as JSON."}],
                       SamplingParams(temperature=1.0, seed=5, max_tokens=100), response_format=Weather)
    completion = out[0].outputs[0]
    assert isinstance(completion.parsed, Weather)
    assert list(json.loads(completion.text)) == ["city", "temperature_c", "sky"]  # the schema's order


def test_response_format_openai_dicts(smollm2):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    out = smollm2.generate("A number:", SamplingParams(temperature=1.0, seed=1, max_tokens=30),
                           response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}})
    assert isinstance(out[0].outputs[0].parsed["n"], int)
    out = smollm2.generate("Some JSON:", SamplingParams(temperature=1.0, seed=1, max_tokens=60),
                           response_format={"type": "json_object"})
    assert out[0].outputs[0].finish_reason != "stop" or isinstance(out[0].outputs[0].parsed, dict)
    with pytest.raises(InvalidRequestError, match="response_format"):
        smollm2.generate("x", response_format={"type": "yaml"})


@pytest.mark.parametrize(
    "spec, problem",
    [
        (StructuredOutput(json={"type": "object", "not": {"required": ["a"]}}), "not"),
        (StructuredOutput(json='{"type": '), "not valid JSON"),
        (StructuredOutput(regex="(unclosed"), "constraint"),
        (StructuredOutput(grammar="start: missing_rule"), "constraint"),
    ],
)
def test_unsupported_or_invalid_constraints_fail_fast(smollm2, spec, problem):
    with pytest.raises(InvalidRequestError, match=problem):
        smollm2.generate("x", SamplingParams(structured=spec))


def test_structured_output_needs_exactly_one_kind():
    with pytest.raises(InvalidRequestError):
        StructuredOutput()
    with pytest.raises(InvalidRequestError):
        StructuredOutput(regex="a", choice=["a"])
    with pytest.raises(InvalidRequestError):
        StructuredOutput(choice=[])


def test_a_dead_end_finishes_with_an_error_reason(smollm2):
    engine = smollm2.engine
    params = SamplingParams(n=2, seed=0, max_tokens=20, structured=StructuredOutput(regex="a+"))
    rid = engine.add_request("Say a:", params)
    first = engine.requests[rid].seqs[0]
    first.matcher.consume_token(smollm2.tokenizer.encode("zzz")[0])  # push the matcher off its grammar
    final = None
    for _ in range(40):  # the healthy second completion still runs to its end
        final = next((o for o in engine.step() if o.finished), final)
        if final:
            break
    assert final is not None and not engine.has_unfinished_requests()
    broken, healthy = final.outputs
    assert broken.finish_reason == "error" and "constraint" in broken.stop_reason
    assert healthy.finish_reason in ("stop", "length") and re.fullmatch("a+", healthy.text)
