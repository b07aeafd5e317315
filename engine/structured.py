"""Grammar-constrained decoding with llguidance: JSON schema, any JSON object, regex, choice, Lark.

A constraint is compiled once per distinct spec (cached) into an llguidance grammar; every
sequence that uses it gets its own matcher (`grammar_mask.GrammarBackend`). Before sampling, each
constrained row's logits keep only the tokens its matcher allows; after sampling, the matcher
consumes the token.

Work is bounded by llguidance's parser limits (defaults: ~1M "fuel" ≈ 20 ms to build a grammar's
lexer, ~200k ≈ 14 ms per mask step): a grammar over the limit fails to compile with an
InvalidRequestError, and a step over it ends the sequence with finish_reason "error".
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import llguidance
from pydantic import BaseModel

from .errors import InvalidRequestError
from .protocol import StructuredOutput
from .tool_schema import json_schema_of

# Readable JSON: small models answer better with ", " / ": " than with compact JSON.
JSON_DEFAULTS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def from_response_format(response_format) -> StructuredOutput | None:
    """OpenAI-style `response_format` (or a pydantic model class) as a constraint; None for plain text."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return StructuredOutput(json=response_format)
    if not isinstance(response_format, dict) or "type" not in response_format:
        raise InvalidRequestError("response_format must be a pydantic model class or a dict with a 'type'")
    kind = response_format["type"]
    if kind == "text":
        return None
    if kind == "json_object":
        return StructuredOutput(json_object=True)
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema is None:
            raise InvalidRequestError("response_format json_schema needs json_schema.schema")
        return StructuredOutput(json=schema)
    raise InvalidRequestError(f"unknown response_format type {kind!r}; use text, json_object or json_schema")


# The widest integer bounds llguidance represents exactly (it reads bounds as doubles): int64's
# range less the 1,024 values a double cannot tell apart from 2**63.
INT64_BOUND = 2**63 - 1024


def decoding_schema(schema):
    """The schema as decoding enforces it, so that every output both validates against the
    original schema and can end: objects that list properties are closed (`additionalProperties:
    false` unless stated, like xgrammar's strict mode and OpenAI's strict schemas — a model cannot
    wander off adding keys), and integers without bounds are kept to the int64 range."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: decoding_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [decoding_schema(sub) for sub in value]
        elif key in _SCHEMAS:
            out[key] = decoding_schema(value)
    if "properties" in out and "additionalProperties" not in out and "patternProperties" not in out:
        out["additionalProperties"] = False
    kinds = out.get("type")
    if kinds == "integer" or (isinstance(kinds, list) and "integer" in kinds):
        if "minimum" not in out and "exclusiveMinimum" not in out:
            out["minimum"] = -INT64_BOUND
        if "maximum" not in out and "exclusiveMaximum" not in out:
            out["maximum"] = INT64_BOUND
    return out


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMAS = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")


def _spec_key(spec: StructuredOutput) -> str:
    schema = decoding_schema(json_schema_of(spec.json)) if spec.json is not None else None
    # not sort_keys: the order of "properties" is the order the model writes them in
    return json.dumps([schema, spec.json_object, spec.regex, spec.choice, spec.grammar])


@lru_cache(maxsize=256)
def _compile(key: str) -> str:
    schema, json_object, regex, choice, grammar = json.loads(key)
    if schema is not None:
        text = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=JSON_DEFAULTS)
    elif json_object:
        text = llguidance.LLMatcher.grammar_from_json_schema({"type": "object"}, defaults=JSON_DEFAULTS)
    elif regex is not None:
        text = llguidance.LLMatcher.grammar_from_regex(regex)
    elif choice is not None:
        text = llguidance.LLMatcher.grammar_from_regex("|".join(re.escape(c) for c in choice))
    else:
        text = llguidance.LLMatcher.grammar_from_lark(grammar)
    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(text)
    if failed:
        raise InvalidRequestError(f"unsupported or invalid output constraint: {'; '.join(messages)}")
    return text


def compile_grammar(spec: StructuredOutput) -> str:
    """Validate and compile a constraint (cached); raises InvalidRequestError naming the problem."""
    return _compile(_spec_key(spec))
