"""`EngineChatModel`: the `ChatModel` over the embedded engine, one engine per model and process."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

from agentforge.engine import AsyncLLM, ChatMessage, RequestAbortedError, SamplingParams
from agentforge.engine.registry import DEFAULT_MODEL, resolve_model

from .model import ChatChunk, ChatModel, new_message_id, response_format_spec, to_messages

_ENGINES: dict[tuple, AsyncLLM] = {}
_LOCK = threading.Lock()


def shared_engine(model: str | Path = DEFAULT_MODEL, **config: object) -> AsyncLLM:
    """The process's engine for `model` with this config, loaded on first use."""
    key = (str(resolve_model(model)), tuple(sorted((name, repr(value)) for name, value in config.items())))
    with _LOCK:
        llm = _ENGINES.get(key)
        if llm is None:
            llm = _ENGINES[key] = AsyncLLM(model, **config)
    return llm


class EngineChatModel(ChatModel):
    """Chat with the embedded engine: tool calls and structured output are grammar-constrained, so
    even a 135M model emits calls that parse and match their schemas.

    `model` is an alias, a GGUF file or a Hugging Face folder; `engine_config` goes to the engine
    (`dtype`, `max_model_len`, ...). Models with the same model and config share one engine.
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, *, temperature: float = 0.0, max_tokens: int = 512,
                 top_p: float = 1.0, seed: int | None = None, stop: list[str] | None = None,
                 repetition_penalty: float = 1.0, **engine_config: object) -> None:
        resolve_model(model)  # a bad name fails here, not at the first call
        self.model = model
        self.engine_config = engine_config
        self._llm: AsyncLLM | None = None
        # validated now, used for every call
        self.sampling = SamplingParams(temperature=temperature, max_tokens=max_tokens, top_p=top_p, seed=seed,
                                       stop=stop, repetition_penalty=repetition_penalty)

    @classmethod
    def over(cls, llm: AsyncLLM, **sampling: object) -> EngineChatModel:
        """A chat model over an engine the caller already runs (e.g. the one `agentforge serve`
        serves); `sampling` as in the constructor."""
        model = cls(llm.engine.model_path, **sampling)
        model._llm = llm
        return model

    def __repr__(self) -> str:
        return f"EngineChatModel({str(self.model)!r})"

    @property
    def llm(self) -> AsyncLLM:
        return self._llm or shared_engine(self.model, **self.engine_config)

    def count_tokens(self, messages) -> int:
        """Tokens of the messages' text and tool calls in this model's tokenizer, plus 4 per
        message for the chat template's markers (what `trim_messages` budgets with)."""
        encode = self.llm.tokenizer.encode
        total = 0
        for m in to_messages(messages):
            text = m.content if isinstance(m.content, str) else ""
            text += "".join(c.function.name + c.function.arguments for c in m.tool_calls or ())
            total += len(encode(text, add_special_tokens=False)) + 4
        return total

    async def _astream(self, messages: list[ChatMessage]) -> AsyncIterator[ChatChunk]:
        options: dict = {}
        if self.tools and self.tool_choice != "none":
            options.update(tools=self._tool_specs(), tool_choice=self.tool_choice or "auto",
                           parallel_tool_calls=self.parallel_tool_calls)
        if self.response_format is not None:
            options["response_format"] = (self.response_format if isinstance(self.response_format, type)
                                          else response_format_spec(self.response_format))
        message_id, last = new_message_id(), None
        async for out in self.llm.chat(messages, self.sampling, **options):
            last = out
            completion = out.outputs[0]
            if completion.delta or completion.tool_call_deltas:
                yield ChatChunk(message_id, completion.delta, list(completion.tool_call_deltas))
        completion = last.outputs[0]
        if completion.finish_reason == "abort":
            raise RequestAbortedError("the engine aborted the reply")
        usage = {"prompt_tokens": last.usage.prompt_tokens, "completion_tokens": last.usage.completion_tokens,
                 "total_tokens": last.usage.total_tokens}
        message = ChatMessage(role="assistant", content=completion.text, tool_calls=completion.tool_calls or None,
                              id=message_id, usage=usage, finish_reason=completion.finish_reason)
        yield ChatChunk(message_id, message=message)
