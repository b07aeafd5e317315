"""Compiled graphs over HTTP, as the Agent Protocol that LangGraph's `langgraph-sdk` client speaks:
assistants (one per served graph), threads (their state lives in the graph's checkpointer), and
runs — waited for, or streamed as SSE (`values`, `updates`, `messages-tuple`, `custom`), with
interrupts and `Command(resume=...)`, and the thread's state history.

A run on a thread that does not exist is a 404; a second run on a busy thread a 409; a bad resume
value reaches the graph, which asks again (see `agentforge.agents`). A client that disconnects
mid-stream cancels its run (and the engine requests under it).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agentforge.graphs import Command, InMemorySaver

from ._lc_messages import from_lc_input, jsonable
from .errors import APIError
from .openai_routes import guard

router = APIRouter()
STREAM_MODES = {"values", "updates", "messages-tuple", "messages", "custom"}


class Assistant:
    """A served graph: its checkpointer (the graph's own, else one in memory) keeps the threads."""

    def __init__(self, assistant_id: str, graph) -> None:
        if not getattr(graph, "_is_compiled_graph", False):
            raise TypeError(f"assistant {assistant_id!r}: expected a compiled graph, got {type(graph).__name__}")
        if graph.checkpointer is None:
            graph.checkpointer = InMemorySaver()
        self.id, self.graph, self.created = assistant_id, graph, _now()

    def describe(self) -> dict:
        return {"assistant_id": self.id, "graph_id": self.id, "name": self.id, "config": {}, "context": {},
                "metadata": {}, "version": 1, "created_at": self.created, "updated_at": self.created,
                "description": None}


class Threads:
    """Thread records (metadata, status); their state is in the assistants' checkpointers, so a
    thread that ran before a restart is found again in the checkpointer of the assistant it ran on."""

    def __init__(self, assistants: dict[str, Assistant]) -> None:
        self.assistants = assistants
        self.records: dict[str, dict] = {}
        self.busy: set[str] = set()

    def create(self, thread_id: str, metadata: dict, created_at: str | None = None) -> dict:
        """A new idle record."""
        created_at = created_at or _now()
        record = self.records[thread_id] = {"thread_id": thread_id, "created_at": created_at, "updated_at": created_at,
                                            "metadata": metadata, "status": "idle", "values": None, "interrupts": {}}
        return record

    def find(self, thread_id: str) -> dict | None:
        """The thread's record: known, or recovered from the checkpointer of the assistant it ran on."""
        record = self.records.get(thread_id)
        if record is not None:
            return record
        for assistant in self.assistants.values():
            if assistant.graph.checkpointer.get_tuple(_config(thread_id)) is None:  # not a thread of this one
                continue
            snapshot = assistant.graph.get_state(_config(thread_id))
            record = self.create(thread_id, {"assistant_id": assistant.id}, snapshot.created_at)
            self.refresh(record, snapshot)
            return record
        return None

    def get(self, thread_id: str) -> dict:
        record = self.find(thread_id)
        if record is None:
            raise APIError(404, f"thread {thread_id!r} not found; create it with POST /threads", "not_found_error")
        return record

    @staticmethod
    def refresh(record: dict, snapshot, failed: bool = False) -> None:
        """Copy the thread's latest state into its record."""
        record["values"] = jsonable(snapshot.values)
        record["interrupts"] = {t.id: jsonable(list(t.interrupts)) for t in snapshot.tasks if t.interrupts}
        record["status"] = "error" if failed else "interrupted" if record["interrupts"] else "idle"


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    thread_id: str | None = None
    metadata: dict = Field(default_factory=dict)
    if_exists: str = "raise"


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    assistant_id: str
    input: dict | None = None
    command: dict | None = None
    config: dict | None = None
    context: dict | None = None
    stream_mode: str | list[str] = "values"
    interrupt_before: list[str] | None = None
    interrupt_after: list[str] | None = None
    if_not_exists: str = "reject"


class ThreadSearch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metadata: dict = Field(default_factory=dict)
    status: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class HistoryQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(10, ge=1, le=1000)
    before: dict | None = None


def agents_of(request: Request) -> tuple[dict[str, Assistant], Threads]:
    state = request.app.state
    return state.assistants, state.threads


@router.post("/assistants/search")
async def search_assistants(request: Request, who: str = Depends(guard)):
    assistants, _ = agents_of(request)
    return [a.describe() for a in assistants.values()]


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, request: Request, who: str = Depends(guard)):
    return _assistant(request, assistant_id).describe()


@router.post("/threads")
async def create_thread(body: ThreadCreate, request: Request, who: str = Depends(guard)):
    _, threads = agents_of(request)
    thread_id = body.thread_id or str(uuid.uuid4())
    if thread_id in threads.records:
        if body.if_exists == "do_nothing":
            return threads.records[thread_id]
        raise APIError(409, f"thread {thread_id!r} already exists", code="conflict")
    return threads.create(thread_id, body.metadata)


@router.post("/threads/search")
async def search_threads(body: ThreadSearch, request: Request, who: str = Depends(guard)):
    """Threads of this server's lifetime, most recently updated first, filtered by metadata and status."""
    records = [r for r in agents_of(request)[1].records.values()
               if all(r["metadata"].get(k) == v for k, v in body.metadata.items())
               and (body.status is None or r["status"] == body.status)]
    records.sort(key=lambda r: r["updated_at"], reverse=True)
    return records[body.offset:body.offset + body.limit]


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: str, request: Request, who: str = Depends(guard)):
    return agents_of(request)[1].get(thread_id)


@router.get("/threads/{thread_id}/state")
async def thread_state(thread_id: str, request: Request, who: str = Depends(guard)):
    record = agents_of(request)[1].get(thread_id)
    assistant = _thread_assistant(request, record)
    if assistant is None:
        return _empty_state(thread_id)
    return _state(assistant.graph.get_state(_config(thread_id)), thread_id)


@router.post("/threads/{thread_id}/history")
async def thread_history(thread_id: str, body: HistoryQuery, request: Request, who: str = Depends(guard)):
    record = agents_of(request)[1].get(thread_id)
    assistant = _thread_assistant(request, record)
    if assistant is None:
        return []
    config = _config(thread_id)
    before = (body.before or {}).get("checkpoint_id") if isinstance(body.before, dict) else None
    kwargs = {"before": {"configurable": {"thread_id": thread_id, "checkpoint_id": before}}} if before else {}
    return [_state(s, thread_id) for s in assistant.graph.get_state_history(config, limit=body.limit, **kwargs)]


@router.post("/threads/{thread_id}/runs/wait")
async def run_wait(thread_id: str, body: RunCreate, request: Request, who: str = Depends(guard)):
    assistant, graph_input, config, options = _prepare(request, thread_id, body, stream=False)
    config["run_id"] = str(uuid.uuid4())  # names the run's trace when tracing is on
    values = None
    async with _running(request, thread_id, assistant):
        async for values in assistant.graph.astream(graph_input, config, stream_mode="values", **options):
            pass
    return jsonable(values or {})


@router.post("/threads/{thread_id}/runs/stream")
async def run_stream(thread_id: str, body: RunCreate, request: Request, who: str = Depends(guard)):
    assistant, graph_input, config, options = _prepare(request, thread_id, body, stream=True)
    modes = options.pop("modes")
    run_id = config["run_id"] = str(uuid.uuid4())

    async def events():
        yield _sse("metadata", {"run_id": run_id, "thread_id": thread_id})
        try:
            async with _running(request, thread_id, assistant):
                async for mode, chunk in assistant.graph.astream(graph_input, config, stream_mode=modes, **options):
                    if mode == "messages":
                        message, metadata = chunk
                        yield _sse("messages", [jsonable(message), jsonable(metadata)])
                    else:
                        yield _sse(mode, jsonable(chunk))
        except APIError as exc:
            yield _sse("error", {"error": "conflict" if exc.status == 409 else "error", "message": exc.message})
        except Exception as exc:  # the run failed: say so in the stream, keep the server going
            yield _sse("error", {"error": type(exc).__name__, "message": str(exc)})
        yield _sse("end", {"run_id": run_id, "status": "done"})

    return StreamingResponse(events(), media_type="text/event-stream")


# --- helpers ------------------------------------------------------------------------------


def _assistant(request: Request, assistant_id: str) -> Assistant:
    assistants, _ = agents_of(request)
    if assistant_id not in assistants:
        raise APIError(404, f"assistant {assistant_id!r} not found; served: {sorted(assistants)}", "not_found_error")
    return assistants[assistant_id]


def _thread_assistant(request: Request, record: dict) -> Assistant | None:
    assistant_id = record["metadata"].get("assistant_id")
    return agents_of(request)[0].get(assistant_id) if assistant_id else None


def _config(thread_id: str, extra: dict | None = None) -> dict:
    config = dict(extra or {})
    config["configurable"] = {**config.get("configurable", {}), "thread_id": thread_id}
    return config


def _prepare(request: Request, thread_id: str, body: RunCreate, stream: bool):
    assistant = _assistant(request, body.assistant_id)
    _, threads = agents_of(request)
    if threads.find(thread_id) is None and body.if_not_exists == "create":
        threads.create(thread_id, {})
    record = threads.get(thread_id)
    bound = record["metadata"].setdefault("assistant_id", assistant.id)
    if bound != assistant.id:
        raise APIError(409, f"thread {thread_id!r} belongs to assistant {bound!r}", code="conflict")
    if thread_id in threads.busy:
        raise APIError(409, f"thread {thread_id!r} has a run in progress", code="conflict")
    if body.input is not None and body.command is not None:
        raise APIError(400, "give either input or command, not both", param="command")
    graph_input = from_lc_input(body.input)  # None continues from a breakpoint
    if body.command is not None:
        unknown = sorted(set(body.command) - {"resume", "update", "goto"})
        if unknown:
            raise APIError(400, f"unknown command field(s) {unknown}; use resume, update, goto", param="command")
        graph_input = Command(**body.command)
    modes = [body.stream_mode] if isinstance(body.stream_mode, str) else list(body.stream_mode)
    bad = sorted(set(modes) - STREAM_MODES)
    if bad:
        raise APIError(400, f"unsupported stream_mode {bad}; supported: {sorted(STREAM_MODES)}", param="stream_mode")
    options: dict[str, Any] = {"interrupt_before": body.interrupt_before, "interrupt_after": body.interrupt_after}
    if body.context is not None:
        options["context"] = body.context
    options = {k: v for k, v in options.items() if v is not None}
    if stream:  # "messages-tuple" is LangGraph's "messages": (chunk, metadata) pairs
        options["modes"] = list(dict.fromkeys("messages" if m.startswith("messages") else m for m in modes))
    return assistant, graph_input, _config(thread_id, body.config), options


class _running:
    """Marks the thread busy for one run (a second run is a 409) and records its outcome."""

    def __init__(self, request: Request, thread_id: str, assistant: Assistant) -> None:
        self.threads = agents_of(request)[1]
        self.thread_id, self.assistant = thread_id, assistant

    async def __aenter__(self):
        if self.thread_id in self.threads.busy:
            raise APIError(409, f"thread {self.thread_id!r} has a run in progress", code="conflict")
        self.threads.busy.add(self.thread_id)
        self.threads.records[self.thread_id]["status"] = "busy"

    async def __aexit__(self, kind, exc, tb):
        self.threads.busy.discard(self.thread_id)
        record = self.threads.records[self.thread_id]
        snapshot = await asyncio.to_thread(self.assistant.graph.get_state, _config(self.thread_id))
        self.threads.refresh(record, snapshot, failed=exc is not None)
        record["updated_at"] = _now()


def _state(snapshot, thread_id: str) -> dict:
    checkpoint_id = snapshot.config["configurable"].get("checkpoint_id") if snapshot.config else None
    parent = snapshot.parent_config["configurable"].get("checkpoint_id") if snapshot.parent_config else None
    return {
        "values": jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": [{"id": t.id, "name": t.name, "error": str(t.error) if t.error else None,
                   "interrupts": jsonable(list(t.interrupts)), "state": None} for t in snapshot.tasks],
        "interrupts": jsonable(list(snapshot.interrupts)),
        "metadata": jsonable(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id},
        "parent_checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": parent} if parent else None,
        "checkpoint_id": checkpoint_id,
        "parent_checkpoint_id": parent,
    }


def _empty_state(thread_id: str) -> dict:
    return {"values": {}, "next": [], "tasks": [], "interrupts": [], "metadata": {}, "created_at": None,
            "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None},
            "parent_checkpoint": None, "checkpoint_id": None, "parent_checkpoint_id": None}


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
