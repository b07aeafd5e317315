"""AgentForge: agents, tools and RAG on an embedded, high-throughput LLM inference engine."""

from agentforge.engine import (
    LLM,
    AsyncLLM,
    ChatMessage,
    EngineConfig,
    EngineError,
    RequestOutput,
    SamplingParams,
)

__version__ = "0.1.0"

__all__ = ["AsyncLLM", "ChatMessage", "EngineConfig", "EngineError", "LLM", "RequestOutput", "SamplingParams", "__version__"]
