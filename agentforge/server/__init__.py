"""`agentforge serve`: the OpenAI-compatible API over the embedded engine."""

from .app import create_app
from .config import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve"]


def serve(config: ServerConfig) -> None:
    """Load the configured model and serve it until stopped."""
    import uvicorn

    from agentforge.engine import AsyncLLM

    llm = AsyncLLM(config.model, dtype=config.dtype, speculative_tokens=config.speculative_tokens,
                   tool_format=config.tool_format)
    try:
        uvicorn.run(create_app(llm, config=config), host=config.host, port=config.port, log_level="info")
    finally:
        llm.shutdown()
