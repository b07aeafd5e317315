"""`RemoteAgent`: any A2A agent (ours or anyone's) as something to call, a graph node or an agent's tool.

>>> research = RemoteAgent("http://127.0.0.1:9999", api_key="secret")
>>> reply = await research.send("What is paged attention?")
>>> reply.state, reply.text
>>> graph.add_node("research", research.as_node())      # streams its tokens into the graph's stream
>>> agent = create_react_agent(model, [research.as_tool()])
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from a2a.client import A2ACardResolver, A2AClientError, Client, ClientConfig, ClientFactory
from a2a.helpers import get_artifact_text
from a2a.types import (
    AgentCard,
    AgentSkill,
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Role,
    SendMessageRequest,
    Task,
    TaskState,
)

from agentforge.agents import ChatChunk
from agentforge.agents.model import new_message_id, to_messages
from agentforge.engine.protocol import ChatMessage
from agentforge.graphs import get_message_writer, get_stream_writer, interrupt
from agentforge.tools import Tool
from agentforge.tracing import trace_headers

from ._parts import message_text, value_parts
from .card import API_KEY_HEADER

_STATE_NAMES = {s: TaskState.Name(s).removeprefix("TASK_STATE_").lower().replace("_", "-") for s in TaskState.values()}
_WAITING = (TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED)
_ASKING = tuple(_STATE_NAMES[s] for s in _WAITING)  # the same states, as RemoteReply.state names them


class RemoteAgentError(RuntimeError):
    """The remote agent is unreachable, refused the call, or answered something that is not A2A."""


@dataclass(slots=True)
class RemoteReply:
    """Where a remote task stands: `state` is "completed", "input-required", "failed", ...; `text`
    is the agent's answer (or its question, or the error); `task_id` is None when the agent
    answered with a plain message instead of a task."""

    state: str
    text: str
    task_id: str | None
    context_id: str | None
    artifacts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RemoteEvent:
    """One streamed update: "text" (a piece of an answer), "status" (state change or a finished
    node, `node` set), or "done" (the last event, with `reply`). `task_id` is the remote task's
    (to cancel it mid-stream); None for an agent that answers with a plain message."""

    kind: Literal["text", "status", "done"]
    text: str = ""
    state: str = ""
    node: str | None = None
    reply: RemoteReply | None = None
    task_id: str | None = None


class RemoteAgent:
    """A client of the A2A agent whose card is at `url` (its base address or the card's URL).

    `token` is sent as `Authorization: Bearer`, `api_key` as `X-API-Key`. `timeout` bounds each
    call (a stream may stay open longer between events: `stream_timeout`); `retries` re-tries
    reaching the card and calls that never reached the agent (refused connection)."""

    def __init__(self, url: str, *, token: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                 stream_timeout: float = 300.0, retries: int = 2, binding: Literal["JSONRPC", "HTTP+JSON"] = "JSONRPC",
                 name: str | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http(s) address, got {url!r}")
        if retries < 0 or timeout <= 0:
            raise ValueError("retries must be >= 0 and timeout > 0")
        self.url = url.removesuffix("/.well-known/agent-card.json").rstrip("/")
        self.name = name
        self.retries = retries
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if api_key:
            headers[API_KEY_HEADER] = api_key
        self._headers, self._timeout, self._binding = headers, httpx.Timeout(timeout, read=stream_timeout), binding
        self._card: AgentCard | None = None
        # connections belong to an event loop; sync agents run tools on loops of their own
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, Client | None]] = (
            weakref.WeakKeyDictionary())

    # --- discovery -------------------------------------------------------------------------

    async def card(self) -> AgentCard:
        """The agent's card (fetched once)."""
        if self._card is None:
            resolver = A2ACardResolver(self._http(), self.url)
            self._card = await self._retry(resolver.get_agent_card)
            self.name = self.name or self._card.name
        return self._card

    async def skills(self) -> list[AgentSkill]:
        return list((await self.card()).skills)

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = (httpx.AsyncClient(headers=self._headers, timeout=self._timeout,
                                                     event_hooks={"request": [_send_trace_context]}), None)
        return self._clients[loop][0]

    async def _connect(self) -> Client:
        card, http = await self.card(), self._http()
        client = self._clients[asyncio.get_running_loop()][1]
        if client is None:
            config = ClientConfig(streaming=True, httpx_client=http, supported_protocol_bindings=[self._binding])
            client = ClientFactory(config).create(card)
            self._clients[asyncio.get_running_loop()] = (http, client)
        return client

    # --- calls -----------------------------------------------------------------------------

    async def send(self, content: Any, *, context_id: str | None = None, task_id: str | None = None) -> RemoteReply:
        """Send `content` (text, or a JSON value as a data part) and wait for the task to finish or
        to stop for input. Pass `task_id` to answer an input-required task."""
        reply = None
        async for event in self.stream(content, context_id=context_id, task_id=task_id):
            reply = event.reply or reply
        assert reply is not None
        return reply

    async def stream(self, content: Any, *, context_id: str | None = None,
                     task_id: str | None = None) -> AsyncIterator[RemoteEvent]:
        """Send `content` and yield the agent's progress as it happens; the last event is "done"."""
        client = await self._connect()
        message = Message(role=Role.ROLE_USER, parts=value_parts(content), message_id=str(uuid.uuid4()),
                          context_id=context_id or "", task_id=task_id or "")
        task_id: str | None = None
        answer: Message | None = None
        seen: set[str] = set()  # artifacts streamed so far: a later non-append update replaces, not adds
        try:
            async for response in client.send_message(SendMessageRequest(message=message)):
                kind = response.WhichOneof("payload")
                if kind == "message":
                    answer = response.message
                elif kind == "task":
                    task_id = response.task.id
                elif kind == "status_update":
                    update = response.status_update
                    task_id = task_id or update.task_id
                    node = update.metadata["node"] if "node" in update.metadata else None
                    yield RemoteEvent("status", message_text(update.status.message), _STATE_NAMES[update.status.state],
                                      node=node, task_id=task_id)
                elif kind == "artifact_update":
                    update = response.artifact_update
                    replaces = not update.append and update.artifact.artifact_id in seen
                    seen.add(update.artifact.artifact_id)
                    if not replaces and (text := get_artifact_text(update.artifact, "")):
                        yield RemoteEvent("text", text, task_id=update.task_id)
        except (A2AClientError, httpx.HTTPError) as exc:
            raise RemoteAgentError(f"A2A agent at {self.url}: {exc}") from exc
        if answer is None and task_id is None:
            raise RemoteAgentError(f"A2A agent at {self.url} ended the stream without a task or a message")
        reply = _reply_of_message(answer) if answer is not None else await self.get(task_id)  # the task, whole
        yield RemoteEvent("done", reply.text, reply.state, reply=reply, task_id=reply.task_id)

    async def get(self, task_id: str) -> RemoteReply:
        client = await self._connect()
        return _reply_of_task(await self._call(client.get_task(GetTaskRequest(id=task_id))))

    async def cancel(self, task_id: str) -> RemoteReply:
        client = await self._connect()
        return _reply_of_task(await self._call(client.cancel_task(CancelTaskRequest(id=task_id))))

    async def waiting_task(self, context_id: str) -> str | None:
        """The id of a task of `context_id` that waits for input, if any."""
        client = await self._connect()
        page = await self._call(client.list_tasks(ListTasksRequest(context_id=context_id)))
        return next((t.id for t in page.tasks if t.status.state in _WAITING), None)

    async def aclose(self) -> None:
        """Close this event loop's connections."""
        http, client = self._clients.pop(asyncio.get_running_loop(), (None, None))
        if client is not None:
            await client.close()
        if http is not None:
            await http.aclose()

    # --- as a node, as a tool ----------------------------------------------------------------

    def as_node(self, *, messages_key: str = "messages"):
        """A graph node for message-state graphs: sends the last message's text (the graph's
        thread is the remote context), streams the remote answer into the graph's "messages"
        stream and its progress into "custom", and appends the answer. When the remote agent
        asks for input, the node calls `interrupt(question)`; resuming the graph answers it."""

        async def remote_node(state: dict, config: dict) -> dict:
            context_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.url}#{config['configurable'].get('thread_id')}"))
            message_id = new_message_id()
            waiting = await self.waiting_task(context_id)
            if waiting is None:
                reply = await self._stream_into_graph(_text(state[messages_key][-1]), context_id, None, message_id)
                delivered = 0
            else:  # the node runs again after an interrupt: the remote task's history says what it got
                task = await self._call((await self._connect()).get_task(GetTaskRequest(id=waiting)))
                reply, delivered = _reply_of_task(task), sum(m.role == Role.ROLE_USER for m in task.history) - 1
            asked = 0
            while reply.state in _ASKING:
                answer = interrupt({"type": "remote_input", "agent": self.name or self.url, "question": reply.text})
                asked += 1
                if asked > delivered:  # answers up to `delivered` reached the agent on earlier runs
                    reply = await self._stream_into_graph(answer, context_id, reply.task_id, message_id)
            if reply.state != "completed" and not reply.text:
                reply.text = f"the remote agent ended in state {reply.state}"
            return {messages_key: [ChatMessage(role="assistant", content=reply.text, name=_safe_name(self.name),
                                               id=message_id)]}

        return remote_node

    def as_tool(self, *, name: str | None = None, description: str | None = None) -> Tool:
        """A tool that asks this agent. When the agent needs more input the tool says so, with the
        task id to pass back alongside the answer."""

        async def ask(request: str, task_id: str | None = None) -> str:
            try:
                reply = await self.send(request, task_id=task_id)
            except RemoteAgentError as exc:
                return f"error: {exc}"
            if reply.state in _ASKING:
                return f"The agent needs more input (answer with task_id={reply.task_id!r}): {reply.text}"
            return reply.text if reply.state == "completed" else f"The agent's task {reply.state}: {reply.text}"

        return Tool(ask, name=name or _safe_name(self.name) or "ask_agent", description=description or (
            f"Ask the remote agent {self.name or self.url} (over A2A). Pass task_id only to answer its question."))

    # --- helpers ---------------------------------------------------------------------------

    async def _stream_into_graph(self, content: Any, context_id: str, task_id: str | None,
                                 message_id: str) -> RemoteReply:
        tokens, progress = get_message_writer(), get_stream_writer()
        reply = None
        async for event in self.stream(content, context_id=context_id, task_id=task_id):
            if event.kind == "text":
                tokens(ChatChunk(message_id, event.text))
            elif event.kind == "status":
                progress({"agent": self.name or self.url, "state": event.state, "node": event.node})
            else:
                reply = event.reply
        tokens(ChatChunk(message_id, "", message=ChatMessage(role="assistant", content=reply.text, id=message_id)))
        return reply

    async def _call(self, awaitable):
        try:
            return await awaitable
        except (A2AClientError, httpx.HTTPError) as exc:
            raise RemoteAgentError(f"A2A agent at {self.url}: {exc}") from exc

    async def _retry(self, call):
        for attempt in range(self.retries + 1):
            try:
                return await call()
            except (httpx.ConnectError, A2AClientError) as exc:
                if attempt == self.retries:
                    raise RemoteAgentError(f"cannot reach the A2A agent at {self.url}: {exc}") from exc
                await asyncio.sleep(0.2 * 2 ** attempt)
            except (httpx.HTTPError, ValueError) as exc:
                raise RemoteAgentError(f"A2A agent at {self.url} gave no valid agent card: {exc}") from exc


async def _send_trace_context(request: httpx.Request) -> None:
    """Inside a traced run, each request names the calling node's or tool's span (W3C `traceparent`,
    LangSmith's `langsmith-trace`), so a traced agent on the other side joins the caller's trace."""
    request.headers.update(trace_headers())


def _reply_of_task(task: Task) -> RemoteReply:
    artifacts = [get_artifact_text(a, "") for a in task.artifacts]
    text = message_text(task.status.message) if task.status.HasField("message") else ""
    return RemoteReply(_STATE_NAMES[task.status.state], text or (artifacts[-1] if artifacts else ""), task.id,
                       task.context_id, [a for a in artifacts if a])


def _reply_of_message(message: Message) -> RemoteReply:
    return RemoteReply("completed", message_text(message), message.task_id or None, message.context_id or None)


def _text(message: Any) -> str:
    content = to_messages(message)[0].content
    return content if isinstance(content, str) else str(content)


def _safe_name(name: str | None) -> str | None:
    """A name usable as a tool or message name: letters, digits, _ and -."""
    if not name:
        return None
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name)[:64]
