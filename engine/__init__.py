"""AgentForge's embedded inference engine: paged KV cache, continuous batching, chunked prefill,
prefix caching, a full sampler, grammar-constrained output and function calling, in plain PyTorch."""

import importlib

# Imported on first use: `agentforge.graphs` and `agentforge.tools` need only the shared surface
# (protocol, errors, tool_schema), not torch and the model code.
_EXPORTS = {
    "ALIASES": "registry",
    "AsyncLLM": "async_llm",
    "ChatMessage": "protocol",
    "ChatOptions": "protocol",
    "CompletionOutput": "protocol",
    "ContextLengthError": "errors",
    "DEFAULT_MODEL": "registry",
    "EngineConfig": "config",
    "EngineError": "errors",
    "EngineSnapshot": "llm_engine",
    "EngineStats": "llm_engine",
    "function_schema": "tool_schema",
    "InvalidRequestError": "errors",
    "LLM": "llm",
    "LLMEngine": "llm_engine",
    "load_model": "loader",
    "load_tokenizer": "loader",
    "Logprob": "protocol",
    "ModelLoadError": "errors",
    "ModelNotFoundError": "errors",
    "parse_tool_calls": "tool_parser",
    "RequestAbortedError": "errors",
    "RequestOutput": "protocol",
    "resolve_model": "registry",
    "SamplingParams": "protocol",
    "StructuredOutput": "protocol",
    "tool_spec": "tool_schema",
    "ToolCall": "protocol",
    "ToolCallDelta": "protocol",
    "ToolCallFunction": "protocol",
    "ToolCallParser": "tool_parser",
    "Usage": "protocol",
}


__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
