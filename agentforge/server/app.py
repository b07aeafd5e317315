"""The HTTP server over the embedded engine (FastAPI): the OpenAI-compatible API, compiled graphs
through the Agent Protocol (`agent_routes.py`) and, with `a2a`, over A2A (`agentforge.a2a`), the
chat app at `/`, `/health` and Prometheus `/metrics`.

The routes live in `openai_routes.py`, the OpenAI response shapes in `openai_shapes.py`, the
upstream proxy in `proxy.py`, the error bodies in `errors.py`; this module wires them together.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from agentforge import __version__
from agentforge.tracing import SqliteTraceStore, traced
from agentforge.tracing.langsmith import LangSmithExporter, tracing_enabled

from . import agent_routes, embedding_routes, graphrag_routes, lora_routes, media_routes, openai_routes, trace_routes
from .agent_routes import Assistant, Threads
from .config import ServerConfig
from .errors import error_response, install_error_handlers
from .metrics import Metrics
from .openai_routes import ServerState
from .proxy import BACKEND_HEADER
from .routing import Router

STATIC = Path(__file__).parent / "static"


def _trace_exporters(config: ServerConfig, metrics: Metrics) -> tuple[SqliteTraceStore | None, list]:
    """Every served graph's runs feed the graph metrics; also the trace store when configured, and
    LangSmith when its own switch (LANGSMITH_TRACING=true) is on."""
    store = SqliteTraceStore(config.trace_store) if config.trace_store else None
    exporters = [metrics, *([store] if store else []), *([LangSmithExporter()] if tracing_enabled() else [])]
    return store, exporters


def _a2a_servers(app: FastAPI, config: ServerConfig) -> list:
    """Each served graph as an A2A agent at /a2a/<assistant id>, behind the server's API keys."""
    from agentforge.a2a import A2AServer

    base = (config.public_url or f"http://{config.host}:{config.port}").rstrip("/")
    servers = []
    for name, assistant in app.state.assistants.items():
        server = A2AServer(assistant.graph, url=f"{base}/a2a/{name}", path=f"/a2a/{name}", name=name,
                           api_keys=config.api_keys, max_body_bytes=config.max_body_bytes)
        server.install(app)
        servers.append(server)
    return servers


def create_app(llm, model_name: str | None = None, config: ServerConfig | None = None,
               graphs: dict | None = None) -> FastAPI:
    """An app serving `llm` (an `AsyncLLM`) as `model_name`, with the guards `config` turns on, and
    `graphs` (assistant id → compiled graph) through the Agent Protocol."""
    config = config or ServerConfig()
    model_name = model_name or config.served_model_name or config.model
    router = Router.from_config(model_name, config.upstreams, config.aliases, config.routes)
    state = ServerState(llm, config, model_name, Metrics(llm), router)

    a2a_servers: list = []

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for server in a2a_servers:
            await server.start()
        yield
        for server in a2a_servers:
            await server.close()
        if app.state.video_jobs is not None:
            await app.state.video_jobs.close()
        for upstream in router.upstreams.values():  # their connection pools close with the server
            await upstream.client.aclose()

    app = FastAPI(title="AgentForge", version=__version__, lifespan=lifespan)
    app.state.server = state
    app.state.image_model, app.state.video_jobs = media_routes.load_media(config.image_model, config.video_model)
    app.state.trace_store, exporters = _trace_exporters(config, state.metrics)
    app.state.assistants = {name: Assistant(name, traced(graph, exporters)) for name, graph in (graphs or {}).items()}
    app.state.threads = Threads(app.state.assistants)
    install_error_handlers(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.max_body_bytes:
            return error_response(413, f"request body is larger than {config.max_body_bytes} bytes",
                                  code="request_too_large")
        response = await call_next(request)
        if request.url.path.startswith("/v1/") and request.method == "POST":
            backend = response.headers.get(BACKEND_HEADER, "none")
            state.metrics.requests.labels(request.url.path, str(response.status_code), backend).inc()
        return response

    app.include_router(openai_routes.router)
    app.include_router(embedding_routes.router)
    app.include_router(media_routes.router)
    app.include_router(lora_routes.router)
    app.include_router(trace_routes.router)
    app.include_router(agent_routes.router)
    app.include_router(graphrag_routes.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if config.a2a:
        a2a_servers += _a2a_servers(app, config)

    @app.get("/", include_in_schema=False)
    async def chat_page():
        return FileResponse(STATIC / "index.html")

    @app.get("/widget.js", include_in_schema=False)
    async def widget():
        return FileResponse(STATIC / "widget.js", media_type="text/javascript")

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/metrics")
    async def prometheus():
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    return app
