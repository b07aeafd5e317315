"""`agentforge serve`: the OpenAI-compatible API over the embedded engine."""

from .app import create_app

__all__ = ["create_app", "serve"]


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000, served_model_name: str | None = None,
          **engine_config) -> None:
    """Load `model` and serve it until stopped."""
    import uvicorn

    from agentforge.engine import AsyncLLM

    llm = AsyncLLM(model, **engine_config)
    try:
        uvicorn.run(create_app(llm, served_model_name or str(model)), host=host, port=port, log_level="info")
    finally:
        llm.shutdown()
