"""`A2AServer`: a compiled graph as an Agent2Agent (A2A 1.0) server, built on the official `a2a-sdk`.

The SDK speaks the protocol (JSON-RPC and HTTP+JSON, 0.3 clients through its compat layer, task
bookkeeping, streaming, push notifications); this module wires a graph into it:
`GraphAgentExecutor` runs the graph, tasks and push-notification configs are stored in the graph's
own database (the SQLite file of its `SqliteSaver`, or `database=`), and tasks a killed server left
running are resumed from the graph's last checkpoint at the next start.

>>> server = A2AServer(agent, url="http://127.0.0.1:9999")
>>> uvicorn.run(server.app(), host="127.0.0.1", port=9999)
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
from collections.abc import Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
from a2a.server.context import ServerCallContext
from a2a.server.models import create_push_notification_config_model, create_task_model
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import (
    BasePushNotificationSender,
    DatabasePushNotificationConfigStore,
    DatabaseTaskStore,
    InMemoryPushNotificationConfigStore,
    InMemoryTaskStore,
    TaskManager,
)
from a2a.types import ListTasksRequest, TaskState
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from a2a.utils.push_url_validator import validate_push_notification_url
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from agentforge.graphs import CompiledStateGraph, InMemorySaver, SqliteSaver

from ._guard import A2AGuard
from .card import REST_PATH, agent_card
from .executor import GraphAgentExecutor

log = logging.getLogger(__name__)
_UNFINISHED = (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)


class A2AServer:
    """Serves `graph` over A2A at `url` (its public address; `path` is where its routes sit in this
    app, "" for an app of its own).

    - `database`: where tasks and push configs live — a SQLite file path or a SQLAlchemy async URL
      (`postgresql+psycopg://...`). Default: the database of the graph's `SqliteSaver` or
      `PostgresSaver`, else memory (tasks then end with the process). A graph without a checkpointer gets one in
      `database` (SQLite) or in memory.
    - `api_keys`: when given, every call but the agent card needs one (bearer token or
      `X-API-Key`), and the card declares both schemes.
    - `private_webhooks`: allow push notifications to loopback/private addresses (local setups,
      tests); by default they must go to public hosts.
    - `direct_replies`: a node may answer with a plain A2A `Message` instead of a task (see
      `GraphAgentExecutor`).
    """

    def __init__(self, graph: CompiledStateGraph, *, url: str, path: str = "", name: str | None = None,
                 description: str | None = None, version: str = "1.0.0", database: str | Path | None = None,
                 api_keys: Sequence[str] = (), max_body_bytes: int = 1 << 20, private_webhooks: bool = False,
                 direct_replies: bool = False) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be the server's public http(s) address, got {url!r}")
        if path and (not path.startswith("/") or path.endswith("/")):
            raise ValueError(f"path must start with '/' and not end with one, got {path!r}")
        if any(not key for key in api_keys):
            raise ValueError("api_keys must not contain empty keys")
        self.path = path
        self._guard = {"prefix": path, "api_keys": tuple(api_keys), "max_body_bytes": max_body_bytes}
        self.graph = _with_checkpointer(graph, database)
        self.card = agent_card(self.graph, url, name=name, description=description, version=version,
                               secured=bool(api_keys))
        self.executor = GraphAgentExecutor(self.graph, direct_replies=direct_replies)
        db_url = _database_url(database, self.graph)
        self._engine = _async_engine(db_url) if db_url else None
        if self._engine is not None:
            self.task_store, self.push_store = _database_stores(self._engine, self.card.name)
        else:
            self.task_store, self.push_store = InMemoryTaskStore(), InMemoryPushNotificationConfigStore()
        self._http = httpx.AsyncClient(timeout=10.0)
        validator = None if private_webhooks else validate_push_notification_url
        self.handler = DefaultRequestHandler(
            agent_executor=self.executor, task_store=self.task_store, agent_card=self.card,
            push_config_store=self.push_store, push_url_validator=validator,
            push_sender=BasePushNotificationSender(self._http, self.push_store, push_url_validator=validator))
        self._recovering: set[asyncio.Task] = set()

    @property
    def routes(self) -> list:
        """The agent card, JSON-RPC at `path` and HTTP+JSON at `path/rest`. The SDK's multi-tenant
        copies of the REST routes (a catch-all `/{tenant}` mount at the root) are left out: this
        agent has no tenants, and that mount would shadow every route after it."""
        rpc = self.path or "/"
        rest = create_rest_routes(self.handler, enable_v0_3_compat=True, path_prefix=self.path + REST_PATH)
        return [*create_agent_card_routes(self.card, card_url=self.path + AGENT_CARD_WELL_KNOWN_PATH),
                *create_jsonrpc_routes(self.handler, rpc_url=rpc, enable_v0_3_compat=True),
                *(route for route in rest if not isinstance(route, Mount))]

    def app(self) -> Starlette:
        """A Starlette app of its own serving this agent (starts and closes with its lifespan)."""

        @asynccontextmanager
        async def lifespan(app):
            await self.start()
            yield
            await self.close()

        return Starlette(routes=self.routes, middleware=[Middleware(A2AGuard, **self._guard)], lifespan=lifespan)

    def install(self, app: Starlette) -> None:
        """Add these routes and their guard to an existing app (FastAPI or Starlette) before it
        starts; the app's lifespan must await `start()` and `close()`."""
        app.router.routes.extend(self.routes)
        app.add_middleware(A2AGuard, **self._guard)

    async def start(self) -> None:
        """Create the tables, then resume the tasks a killed server left submitted or working."""
        if self._engine is not None:
            await self.task_store.initialize()
            await self.push_store.initialize()
        for task in await self._unfinished_tasks():
            log.info("A2A: resuming task %s from the graph's last checkpoint", task.id)
            job = asyncio.create_task(self._resume(task))
            self._recovering.add(job)
            job.add_done_callback(self._recovering.discard)

    async def close(self) -> None:
        for job in list(self._recovering):
            job.cancel()
        await asyncio.gather(*self._recovering, return_exceptions=True)
        await self._http.aclose()
        if self._engine is not None:
            await self._engine.dispose()

    async def _unfinished_tasks(self) -> list:
        context, tasks, token = ServerCallContext(), [], ""
        while True:
            page = await self.task_store.list(ListTasksRequest(page_size=100, page_token=token), context)
            tasks += [t for t in page.tasks if t.status.state in _UNFINISHED]
            if not (token := page.next_page_token):
                return tasks

    async def _resume(self, task) -> None:
        manager = TaskManager(self.task_store, ServerCallContext(), task.id, task.context_id, None)
        # the run's events go straight to the task's stored record
        await self.executor.resume(task, SimpleNamespace(enqueue_event=manager.process))


def _database_stores(engine: AsyncEngine, agent: str) -> tuple[DatabaseTaskStore, DatabasePushNotificationConfigStore]:
    """The SDK's stores on tables of this agent's own (agents may share a database). The SDK
    declares a table's model once per process, so the models are made once per name and shared."""
    table = "".join(c if c.isalnum() else "_" for c in agent.lower())
    tasks, push = DatabaseTaskStore(engine), DatabasePushNotificationConfigStore(engine)
    tasks.task_model, push.config_model = _models(table)
    return tasks, push


@functools.cache
def _models(table: str) -> tuple[type, type]:
    return create_task_model(f"a2a_tasks_{table}"), create_push_notification_config_model(f"a2a_push_{table}")


def _with_checkpointer(graph: CompiledStateGraph, database: str | Path | None) -> CompiledStateGraph:
    if not getattr(graph, "_is_compiled_graph", False):
        raise TypeError(f"A2AServer serves a compiled graph (StateGraph.compile() or an agent), got {type(graph).__name__}")
    if graph.checkpointer is not None:
        return graph
    graph = copy.copy(graph)  # the caller's graph stays as it was
    local = database is not None and "://" not in str(database)
    graph.checkpointer = SqliteSaver(database) if local else InMemorySaver()
    return graph


def _async_engine(url: str) -> AsyncEngine:
    """An engine for `url`; on SQLite its transactions take the write lock when they begin, so a
    read-then-write never fails with "database is locked" beside the checkpointer's connection."""
    if not url.startswith("sqlite"):
        return create_async_engine(url)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _autocommit_driver(dbapi_connection, record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _database_url(database: str | Path | None, graph: CompiledStateGraph) -> str | None:
    """Where tasks go: `database`, else the database of the graph's SQLite or PostgreSQL saver."""
    saver = graph.checkpointer
    if database is None and isinstance(saver, SqliteSaver) and saver.path != ":memory:":
        database = saver.path
    conninfo = getattr(saver, "conninfo", None)
    if database is None and isinstance(conninfo, str) and conninfo.startswith(("postgresql://", "postgres://")):
        database = "postgresql+psycopg://" + conninfo.split("://", 1)[1]
    if database is None:
        return None
    if "://" in str(database):
        return str(database)
    return f"sqlite+aiosqlite:///{Path(database).resolve()}"
