"""Types shared across layers: chat messages, sampling parameters and generation outputs.

`graphs/`, `tools/` and the application layer may import this module; it imports nothing else
from the engine except its errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .errors import InvalidRequestError


class ToolCallFunction(BaseModel):
    name: str
    arguments: str = "{}"  # JSON text, as in the OpenAI API


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ChatMessage(BaseModel):
    """One chat turn, OpenAI-style. Plain dicts with the same keys are accepted wherever a message is."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    id: str | None = None  # identifies the message in a graph's state (see agentforge.graphs.add_messages)


@dataclass(slots=True)
class StructuredOutput:
    """Constrain the output to exactly one of: a JSON schema (dict, JSON text or pydantic model),
    any JSON object, a regular expression, one of several strings, or a Lark grammar."""

    json: dict | str | type[BaseModel] | None = None
    json_object: bool = False
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None

    def __post_init__(self) -> None:
        given = [self.json is not None, self.json_object, self.regex is not None, self.choice is not None,
                 self.grammar is not None]
        if sum(given) != 1:
            raise InvalidRequestError("structured output needs exactly one of json, json_object, regex, choice, grammar")
        if self.choice is not None and (
            not isinstance(self.choice, list) or not self.choice or not all(isinstance(c, str) and c for c in self.choice)
        ):
            raise InvalidRequestError("choice must be a non-empty list of non-empty strings")
        for name in ("regex", "grammar"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidRequestError(f"{name} must be a non-empty string")


@dataclass(slots=True)
class ChatOptions:
    """How to answer a conversation, besides sampling: the options of `LLM.chat`, `AsyncLLM.chat`
    and `LLMEngine.make_chat_request`.

    - `tools`: OpenAI function specs, pydantic model classes or typed functions the model may call.
    - `tool_choice`: "auto" (the default with tools: the model calls or answers), "required",
      "none", or `{"type": "function", "function": {"name": ...}}`.
    - `parallel_tool_calls`: whether one reply may hold several calls.
    - `response_format`: a pydantic model class, or OpenAI's `{"type": "json_schema", ...}` /
      `{"type": "json_object"}`: the answer is that JSON (and `parsed` holds it).
    - `add_generation_prompt`: end the prompt with the assistant turn's header.
    - `chat_template_kwargs`: extra variables for the chat template.
    """

    tools: list | None = None
    tool_choice: str | dict | None = None
    parallel_tool_calls: bool = True
    response_format: Any = None
    add_generation_prompt: bool = True
    chat_template_kwargs: dict | None = None

    def __post_init__(self) -> None:
        if self.tools is not None and not isinstance(self.tools, list):
            raise InvalidRequestError("tools must be a list")
        if not isinstance(self.parallel_tool_calls, bool):
            raise InvalidRequestError("parallel_tool_calls must be a boolean")
        if not isinstance(self.add_generation_prompt, bool):
            raise InvalidRequestError("add_generation_prompt must be a boolean")
        if self.chat_template_kwargs is not None and not isinstance(self.chat_template_kwargs, dict):
            raise InvalidRequestError("chat_template_kwargs must be a dict")

    @classmethod
    def of(cls, options: dict) -> ChatOptions:
        """`ChatOptions(**options)`, refusing unknown names with the list of known ones."""
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidRequestError(f"unknown chat option(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**options)


@dataclass(slots=True)
class SamplingParams:
    """How to sample one request. `temperature=0` means greedy decoding.

    `max_tokens=None` generates until a stop condition or the end of the context window.
    `logprobs=k` returns, for every generated token, its log-probability and the k most likely
    alternatives (computed from the raw model logits, before penalties and temperature).
    `lora` names a LoRA adapter loaded into the engine (`LLMEngine.load_lora`) to run the request
    with; "base" asks for none, even where the engine would apply its tool-calling adapter.
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 (or -1) disables
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    max_tokens: int | None = None
    stop: list[str] | str | None = None
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    include_stop_str_in_output: bool = False
    logprobs: int | None = None
    skip_special_tokens: bool = True
    structured: StructuredOutput | None = None
    lora: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = list(self.stop or [])
        self.stop_token_ids = list(self.stop_token_ids or [])
        if self.top_k == -1:
            self.top_k = 0
        self._validate()

    def _validate(self) -> None:
        def bad(what: str) -> InvalidRequestError:
            return InvalidRequestError(f"invalid sampling parameter: {what}")

        for name in ("temperature", "top_p", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise bad(f"{name} must be a finite number, got {value!r}")
        if not isinstance(self.n, int) or self.n < 1:
            raise bad(f"n must be an integer >= 1, got {self.n!r}")
        if self.temperature < 0:
            raise bad(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise bad(f"top_p must be in (0, 1], got {self.top_p}")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise bad(f"top_k must be 0 or -1 (disabled) or a positive integer, got {self.top_k!r}")
        if not 0 <= self.min_p <= 1:
            raise bad(f"min_p must be in [0, 1], got {self.min_p}")
        if self.repetition_penalty <= 0:
            raise bad(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if not -2 <= self.presence_penalty <= 2:
            raise bad(f"presence_penalty must be in [-2, 2], got {self.presence_penalty}")
        if not -2 <= self.frequency_penalty <= 2:
            raise bad(f"frequency_penalty must be in [-2, 2], got {self.frequency_penalty}")
        if self.max_tokens is not None and (not isinstance(self.max_tokens, int) or self.max_tokens < 1):
            raise bad(f"max_tokens must be a positive integer or None, got {self.max_tokens!r}")
        if self.seed is not None and not isinstance(self.seed, int):
            raise bad(f"seed must be an integer or None, got {self.seed!r}")
        if self.logprobs is not None and (not isinstance(self.logprobs, int) or self.logprobs < 0):
            raise bad(f"logprobs must be a non-negative integer or None, got {self.logprobs!r}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise bad("stop strings must be non-empty strings")
        if any(not isinstance(t, int) or t < 0 for t in self.stop_token_ids):
            raise bad("stop_token_ids must be non-negative integers")
        if self.lora is not None and (not isinstance(self.lora, str) or not self.lora):
            raise bad(f"lora must be an adapter name or None, got {self.lora!r}")
        if self.structured is not None and not isinstance(self.structured, StructuredOutput):
            raise bad("structured must be a StructuredOutput")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(slots=True)
class Logprob:
    """Log-probability of the sampled token and of the `top` most likely tokens at that step."""

    token_id: int
    logprob: float
    top: dict[int, float]


@dataclass(slots=True)
class ToolCallDelta:
    """A streamed piece of tool call `index`: its `id` and `name` come once, in its first delta;
    the `arguments` fragments of all its deltas concatenate to its JSON arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class CompletionOutput:
    """One of the `n` completions of a request.

    `text` and `token_ids` are everything generated so far; `delta` and `delta_token_ids` are what
    is new since the previous output of this request (streamed deltas concatenate to `text`).
    In a chat request with tools, `text` is the answer's text outside tool calls, `tool_calls` the
    calls so far and `tool_call_deltas` what is new of them; finish_reason is "tool_calls" when a
    finished answer calls tools.
    """

    index: int
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    delta: str = ""
    delta_token_ids: list[int] = field(default_factory=list)
    logprobs: list[Logprob] | None = None
    # "error": the output constraint reached a dead end; stop_reason then holds the reason
    finish_reason: Literal["stop", "length", "tool_calls", "abort", "error"] | None = None
    stop_reason: str | int | None = None  # the stop string or stop token id that ended it
    parsed: Any = None  # with a JSON response_format: the validated object (pydantic model or dict)
    tool_calls: list[ToolCall] | None = None
    tool_call_deltas: list[ToolCallDelta] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens served from the prefix cache

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class RequestOutput:
    """The state of one request: its prompt, its `n` completions and token accounting."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    usage: Usage
    finished: bool = False
