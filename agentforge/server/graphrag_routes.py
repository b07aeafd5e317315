"""The knowledge-graph viewer: `/graphrag/{kb}` draws a knowledge base's graph (communities in
colours; click an entity for its description, sources, relationships and its communities'
reports), `/api/graphrag/{kb}` gives the same as JSON and `/api/graphrag/{kb}/graphml` the GraphML
file for Gephi. Only the knowledge bases named in the config (`graphrag`) are shown."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from .errors import APIError
from .openai_routes import guard

router = APIRouter()


def _known(request: Request, kb: str) -> str:
    if kb not in request.app.state.server.config.graphrag:
        raise APIError(404, f"no knowledge graph {kb!r} is served here; name it in the config's graphrag list",
                       code="graph_not_found")
    return kb


@router.get("/graphrag/{kb}", include_in_schema=False)
async def graph_page(kb: str, request: Request):
    from .app import STATIC

    _known(request, kb)
    return FileResponse(STATIC / "graph.html")


@router.get("/api/graphrag/{kb}")
async def graph_data(kb: str, request: Request, who: str = Depends(guard)):
    from agentforge.rag.graphrag import graph_view

    view = await asyncio.to_thread(graph_view, _known(request, kb))
    if view is None:
        raise APIError(404, f"knowledge base {kb!r} has no graph yet: run `agentforge graphrag index PATH --kb {kb}`",
                       code="graph_not_built")
    return view


@router.get("/api/graphrag/{kb}/graphml")
async def graph_graphml(kb: str, request: Request, who: str = Depends(guard)):
    from agentforge.rag.graphrag.view import graph_folder

    path = graph_folder(_known(request, kb)) / "graph.graphml"
    if not path.is_file():
        raise APIError(404, f"knowledge base {kb!r} has no graph yet", code="graph_not_built")
    return FileResponse(path, media_type="application/graphml+xml", filename=f"{kb}.graphml")
