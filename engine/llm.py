"""`LLM`: offline, batched generation — hand it all prompts, get all outputs back."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence as Seq
from pathlib import Path

from pydantic import BaseModel

from .config import EngineConfig
from .errors import InvalidRequestError
from .llm_engine import EngineStats, LLMEngine, Prompt
from .protocol import ChatMessage, RequestOutput, SamplingParams
from .registry import DEFAULT_MODEL
from .structured import from_response_format

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

    @property
    def stats(self) -> EngineStats:
        return self.engine.stats

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
        return self._run(list(prompts), sampling_params, response_format)

    def chat(
        self,
        messages: Conversation | Seq[Conversation],
        sampling_params: SamplingParams | Seq[SamplingParams] | None = None,
        response_format: type[BaseModel] | dict | None = None,
        add_generation_prompt: bool = True,
        **template_kwargs: object,
    ) -> list[RequestOutput]:
        """Answer one conversation or a list of them, rendered with the model's chat template."""
        conversations = [messages] if messages and not isinstance(messages[0], list) else list(messages)
        prompts = [self.engine.render_chat(c, add_generation_prompt, **template_kwargs) for c in conversations]
        return self._run(prompts, sampling_params, response_format)

    def _run(self, prompts: list[Prompt], sampling_params, response_format=None) -> list[RequestOutput]:
        if not prompts:
            raise InvalidRequestError("no prompts given")
        if sampling_params is None or isinstance(sampling_params, SamplingParams):
            sampling_params = [sampling_params] * len(prompts)
        if len(sampling_params) != len(prompts):
            raise InvalidRequestError(f"{len(prompts)} prompts but {len(sampling_params)} sampling params")
        structured = from_response_format(response_format) if response_format is not None else None
        if structured is not None:
            sampling_params = [dataclasses.replace(sp or SamplingParams(), structured=structured) for sp in sampling_params]
        requests = [self.engine.make_request(p, sp) for p, sp in zip(prompts, sampling_params)]
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
        outputs = [final[r.request_id] for r in requests]
        if structured is not None:  # a response_format is always JSON: parse what finished
            for out in outputs:
                for completion in out.outputs:
                    if completion.finish_reason == "stop":
                        completion.parsed = _parse(completion.text, response_format)
        return outputs


def _parse(text: str, response_format):
    """The JSON answer as the pydantic model asked for (validated), else as plain JSON data."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format.model_validate_json(text)
    return json.loads(text)
