"""AgentForge's embedded inference engine: paged KV cache, continuous batching, chunked prefill,
prefix caching, a full sampler, grammar-constrained output and function calling, in plain PyTorch."""

from .async_llm import AsyncLLM
from .config import EngineConfig
from .errors import (
    ContextLengthError,
    EngineError,
    InvalidRequestError,
    ModelLoadError,
    ModelNotFoundError,
    RequestAbortedError,
)
from .llm import LLM
from .llm_engine import EngineStats, LLMEngine
from .loader import load_model, load_tokenizer
from .protocol import (
    ChatMessage,
    CompletionOutput,
    Logprob,
    RequestOutput,
    SamplingParams,
    StructuredOutput,
    ToolCall,
    ToolCallDelta,
    ToolCallFunction,
    Usage,
)
from .registry import ALIASES, DEFAULT_MODEL, resolve_model
from .tool_format import ToolCallParser, function_schema, parse_tool_calls, tool_spec

__all__ = [
    "ALIASES",
    "AsyncLLM",
    "ChatMessage",
    "CompletionOutput",
    "ContextLengthError",
    "DEFAULT_MODEL",
    "EngineConfig",
    "EngineError",
    "EngineStats",
    "InvalidRequestError",
    "LLM",
    "LLMEngine",
    "Logprob",
    "ModelLoadError",
    "ModelNotFoundError",
    "RequestAbortedError",
    "RequestOutput",
    "SamplingParams",
    "StructuredOutput",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallFunction",
    "ToolCallParser",
    "Usage",
    "function_schema",
    "load_model",
    "load_tokenizer",
    "parse_tool_calls",
    "resolve_model",
    "tool_spec",
]
