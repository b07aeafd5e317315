"""AgentForge's embedded inference engine: paged KV cache, continuous batching, chunked prefill,
prefix caching and a full sampler, in plain PyTorch."""

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
    ToolCallFunction,
    Usage,
)
from .registry import ALIASES, DEFAULT_MODEL, resolve_model

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
    "ToolCallFunction",
    "Usage",
    "load_model",
    "load_tokenizer",
    "resolve_model",
]
