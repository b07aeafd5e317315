"""AgentForge: agents, tools and RAG on an embedded, high-throughput LLM inference engine.

The engine's main classes are re-exported here; they load on first use, so `agentforge.graphs`
and `agentforge.tools` do not pay for importing torch.
"""

import importlib.metadata

__version__ = importlib.metadata.version("agentforge")

__all__ = ["AsyncLLM", "ChatMessage", "EngineConfig", "EngineError", "LLM", "RequestOutput", "SamplingParams", "__version__"]


def __getattr__(name: str):
    if name in __all__:
        from agentforge import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'agentforge' has no attribute {name!r}")
