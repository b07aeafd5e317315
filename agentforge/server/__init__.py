"""`agentforge serve`: the OpenAI-compatible API over the embedded engine, and compiled graphs
through the Agent Protocol."""

from .app import create_app
from .config import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve"]


def load_graph(target: str):
    """The compiled graph at "module:attribute"."""
    import importlib

    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"a graph is given as module:attribute, got {target!r}")
    try:
        graph = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load graph {target}: {exc}") from exc
    if not getattr(graph, "_is_compiled_graph", False):
        raise ValueError(f"{target} is not a compiled graph")
    return graph


def serve(config: ServerConfig) -> None:
    """Load the configured model and serve it until stopped."""
    import uvicorn

    from agentforge.engine import AsyncLLM

    graphs = {name: load_graph(target) for name, target in config.graphs.items()}  # bad ones fail before the load
    llm = AsyncLLM(config.model, dtype=config.dtype, quantization=config.quantization,
                   kv_cache_dtype=config.kv_cache_dtype, speculative_tokens=config.speculative_tokens,
                   kv_cache_populate=config.kv_cache_populate, tool_format=config.tool_format, lora_adapters=config.lora_adapters,
                   tool_adapter=None if config.tool_adapter == "none" else config.tool_adapter,
                   image_dirs=tuple(config.image_dirs), allow_remote_images=config.allow_remote_images)
    try:
        uvicorn.run(create_app(llm, config=config, graphs=graphs), host=config.host, port=config.port, log_level="info")
    finally:
        llm.shutdown()
