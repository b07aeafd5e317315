"""Grammar-constrained decoding with llguidance: JSON schema, any JSON object, regex, choice, Lark.

A constraint is compiled once per distinct spec (cached) into an llguidance grammar; every
sequence that uses it gets its own matcher. Before sampling, each constrained row's logits keep
only the tokens its matcher allows; after sampling, the matcher consumes the token.

Work is bounded by llguidance's parser limits (defaults: ~1M "fuel" ≈ 20 ms to build a grammar's
lexer, ~200k ≈ 14 ms per mask step): a grammar over the limit fails to compile with an
InvalidRequestError, and a step over it ends the sequence with finish_reason "error".
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

import llguidance
import llguidance.hf
import llguidance.torch
import torch
from pydantic import BaseModel

from .errors import InvalidRequestError
from .protocol import StructuredOutput

# Readable JSON: small models answer better with ", " / ": " than with compact JSON.
JSON_DEFAULTS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
_BITS = torch.arange(32, dtype=torch.int32)


def json_schema_of(spec: dict | str | type[BaseModel]) -> dict:
    """A JSON schema as a dict, from a dict, JSON text or a pydantic model class."""
    if isinstance(spec, type) and issubclass(spec, BaseModel):
        return spec.model_json_schema()
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"JSON schema is not valid JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise InvalidRequestError(f"JSON schema must be an object, got {type(spec).__name__}")
    return spec


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


def closed_objects(schema):
    """The schema with `additionalProperties: false` on every object that lists properties and does
    not say otherwise (like xgrammar's strict mode and OpenAI's strict schemas): the output still
    validates against the original schema, and a model cannot wander off adding keys."""
    if isinstance(schema, list):
        return [closed_objects(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed_objects(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out and "patternProperties" not in out:
        out["additionalProperties"] = False
    return out


def _spec_key(spec: StructuredOutput) -> str:
    schema = closed_objects(json_schema_of(spec.json)) if spec.json is not None else None
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


class GrammarBackend:
    """llguidance's view of one tokenizer; makes matchers and applies their masks to logits."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer)

    def matcher(self, grammar: str) -> llguidance.LLMatcher:
        matcher = llguidance.LLMatcher(self.tokenizer, grammar)
        if matcher.is_error():
            raise InvalidRequestError(f"output constraint failed to compile: {matcher.get_error()}")
        return matcher

    @torch.inference_mode()
    def apply(self, logits: torch.Tensor, rows: list[int], matchers: list[llguidance.LLMatcher]) -> list[str | None]:
        """Mask each row's disallowed tokens to -inf. Returns, per row, None, or why the row is at a
        dead end (its matcher failed, or it allows no token at all)."""
        bitmask = llguidance.torch.allocate_token_bitmask(len(rows), self.tokenizer.vocab_size)
        for i, m in enumerate(matchers):
            llguidance.torch.fill_next_token_bitmask(m, bitmask, i)
        allowed = ((bitmask[:, :, None] >> _BITS) & 1).bool().flatten(1)[:, : self.tokenizer.vocab_size]
        if logits.shape[1] > allowed.shape[1]:  # model vocab padded past the tokenizer's
            pad = torch.zeros(len(rows), logits.shape[1] - allowed.shape[1], dtype=torch.bool)
            allowed = torch.cat([allowed, pad], dim=1)
        index = torch.tensor(rows)
        logits[index] = logits[index].masked_fill(~allowed[:, : logits.shape[1]], float("-inf"))
        return [
            f"output constraint failed: {m.get_error()}" if m.is_error()
            else None if any_allowed else "output constraint allows no further token"
            for m, any_allowed in zip(matchers, allowed.any(dim=1).tolist())
        ]
