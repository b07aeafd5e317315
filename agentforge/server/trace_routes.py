"""The trace viewer: `/traces` lists the served graphs' latest runs, `/traces/{id}` shows one run's
tree (timings, tokens, inputs, outputs, errors); `/api/traces...` gives the same as JSON. On when
the server keeps a trace store (`trace_store` in the config)."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ..tracing import flush
from .errors import APIError
from .openai_routes import guard

router = APIRouter()


def _store(request: Request):
    store = getattr(request.app.state, "trace_store", None)
    if store is None:
        raise APIError(404, "tracing is off: start the server with a trace store (trace_store in the config)",
                       code="tracing_off")
    return store


async def _spans(request: Request, trace_id: str):
    spans = _store(request).trace(trace_id)
    if not spans:  # a run that just ended may still wait for the tracing thread
        await asyncio.to_thread(flush, 2.0)
        spans = _store(request).trace(trace_id)
    if not spans:
        raise APIError(404, f"no trace {trace_id!r}", code="trace_not_found")
    return spans


@router.get("/api/traces")
async def list_traces(request: Request, limit: int = 50, who: str = Depends(guard)):
    await asyncio.to_thread(flush, 2.0)  # runs that just ended, too
    return [_summary(span) for span in _store(request).traces(limit=max(1, min(limit, 1000)))]


@router.get("/api/traces/{trace_id}")
async def get_trace(trace_id: str, request: Request, who: str = Depends(guard)):
    return [dataclasses.asdict(span) for span in await _spans(request, trace_id)]


@router.get("/traces", response_class=HTMLResponse, include_in_schema=False)
async def traces_page(request: Request):
    await asyncio.to_thread(flush, 2.0)
    rows = "".join(
        f"<tr class='{'error' if s['error'] else ''}'><td><a href='/traces/{html.escape(s['trace_id'])}'>"
        f"{html.escape(s['name'])}</a></td><td>{s['started']}</td><td>{s['ms']:.0f} ms</td>"
        f"<td>{html.escape(s['error'] or 'ok')}</td></tr>" for s in map(_summary, _store(request).traces(limit=100)))
    return _page("Traces", "<h1>Traces</h1><table><tr><th>run</th><th>started (UTC)</th><th>duration</th>"
                           f"<th>status</th></tr>{rows}</table>")


@router.get("/traces/{trace_id}", response_class=HTMLResponse, include_in_schema=False)
async def trace_page(trace_id: str, request: Request):
    spans = await _spans(request, trace_id)
    children: dict = {}
    for span in spans:
        children.setdefault(span.parent_id, []).append(span)
    root = spans[0]
    tokens = sum(s.attributes.get("prompt_tokens", 0) + s.attributes.get("completion_tokens", 0) for s in spans)
    head = (f"<h1>{html.escape(root.name)}</h1><p><a href='/traces'>all traces</a> · "
            f"{_ms(root):.0f} ms · {sum(s.kind == 'llm' for s in spans)} LLM calls · {tokens} tokens · "
            f"{sum(s.kind == 'tool' for s in spans)} tool calls</p>")
    return _page(f"Trace {root.name}", head + f"<ul class='tree'>{_tree(root, children, root.start, _ms(root))}</ul>")


def _tree(span, children: dict, origin: float, total_ms: float) -> str:
    left = 100 * (span.start - origin) * 1000 / max(total_ms, 1e-6)
    width = max(100 * _ms(span) / max(total_ms, 1e-6), 0.5)
    facts = [f"{_ms(span):.1f} ms"]
    if "time_to_first_token_s" in span.attributes:
        facts.append(f"first token {span.attributes['time_to_first_token_s'] * 1000:.1f} ms")
    if "prompt_tokens" in span.attributes:
        facts.append(f"{span.attributes['prompt_tokens']} in / {span.attributes.get('completion_tokens', 0)} out tokens")
    details = "".join(f"<details><summary>{label}</summary><pre>{html.escape(json.dumps(value, indent=1))[:20000]}"
                      f"</pre></details>" for label, value in (("inputs", span.inputs), ("outputs", span.outputs))
                      if value is not None)
    error = f"<div class='err'>{html.escape(span.error)}</div>" if span.error else ""
    kids = "".join(_tree(c, children, origin, total_ms) for c in children.get(span.span_id, []))
    return (f"<li class='span {span.kind}'><div class='row'><span class='kind'>{span.kind}</span> "
            f"<b>{html.escape(span.name)}</b> <span class='facts'>{' · '.join(facts)}</span>"
            f"<span class='bar'><i style='left:{left:.2f}%;width:{width:.2f}%'></i></span></div>{error}{details}"
            f"{f'<ul>{kids}</ul>' if kids else ''}</li>")


def _ms(span) -> float:
    return ((span.end or span.start) - span.start) * 1000


def _summary(span) -> dict:
    from datetime import datetime, timezone

    started = datetime.fromtimestamp(span.start, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return {"trace_id": span.trace_id, "name": span.name, "started": started, "ms": _ms(span), "error": span.error}


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                        f"<link rel='stylesheet' href='/static/traces.css'></head><body>{body}</body></html>")
