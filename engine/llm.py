"""`LLM`: offline, batched generation — hand it all prompts, get all outputs back."""

from __future__ import annotations

from collections.abc import Sequence as Seq
from pathlib import Path

from pydantic import BaseModel

from .config import EngineConfig
from .errors import InvalidRequestError
from .llm_engine import EngineSnapshot, LLMEngine
from .outputs import Prompt, Request
from .protocol import ChatMessage, RequestOutput, SamplingParams
from .registry import DEFAULT_MODEL

Conversation = list[ChatMessage | dict]


class LLM:
    """Generate with the embedded engine; all requests run together in one continuous batch.

    >>> llm = LLM("smollm2-135m")
    >>> llm.chat([{"role": "user", "content": "Hi!"}], SamplingParams(max_tokens=32))[0].outputs[0].text
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, **config: object) -> None:
        self.engine = LLMEngine(model, EngineConfig(**config))

    @property
    def tokenizer(self):
        return self.engine.tokenizer

    def stats(self) -> EngineSnapshot:
        """The engine's load and counters (see `EngineSnapshot`)."""
        return self.engine.snapshot()

    def generate(
        self,
        prompts: Prompt | Seq[Prompt],
        sampling_params: SamplingParams | Seq[SamplingParams] | None = None,
        response_format: type[BaseModel] | dict | None = None,
    ) -> list[RequestOutput]:
        """Complete each prompt (a string or a list of token ids); outputs come back in prompt order.

        `response_format` (a pydantic model class, or OpenAI's `{"type": "json_schema", ...}` /
        `{"type": "json_object"}`) constrains every completion to it and fills `parsed`.
        """
        if isinstance(prompts, str) or (isinstance(prompts, list) and prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        params = self._params(len(prompts), sampling_params)
        return self._run([self.engine.make_request(p, sp, None, response_format) for p, sp in zip(prompts, params)])

    def chat(
        self,
        messages: Conversation | Seq[Conversation],
        sampling_params: SamplingParams | Seq[SamplingParams] | None = None,
        **options: object,
    ) -> list[RequestOutput]:
        """Answer one conversation or a list of them, rendered with the model's chat template.

        `options` are `ChatOptions`: `tools` (OpenAI function specs, pydantic model classes or
        typed functions) the completions may call (they then carry `tool_calls`), `tool_choice`
        ("auto", the default with tools; "required"; "none"; or `{"type": "function", "function":
        {"name": ...}}`), `parallel_tool_calls`, `response_format`, `add_generation_prompt`,
        `chat_template_kwargs`.
        """
        conversations = [messages] if messages and not isinstance(messages[0], list) else list(messages)
        params = self._params(len(conversations), sampling_params)
        return self._run([self.engine.make_chat_request(c, sp, **options) for c, sp in zip(conversations, params)])

    @staticmethod
    def _params(count: int, sampling_params) -> list[SamplingParams | None]:
        if not count:
            raise InvalidRequestError("no prompts given")
        if sampling_params is None or isinstance(sampling_params, SamplingParams):
            return [sampling_params] * count
        if len(sampling_params) != count:
            raise InvalidRequestError(f"{count} prompts but {len(sampling_params)} sampling params")
        return list(sampling_params)

    def _run(self, requests: list[Request]) -> list[RequestOutput]:
        for request in requests:
            self.engine.add(request)
        final: dict[str, RequestOutput] = {}
        try:
            while len(final) < len(requests):
                for out in self.engine.step():
                    if out.finished:
                        final[out.request_id] = out
        except BaseException:
            for request in requests:
                self.engine.abort_request(request.request_id)
            raise
        return [final[r.request_id] for r in requests]
