"""What a tool, prompt or resource served over MCP can do while it runs: report progress, log to
the client, and ask the client for input — elicit it from the user, sample the client's LLM, list
its roots.

The same code works in both protocol eras. On a 2025-11-25 session a question is a
server-to-client request answered mid-call. On 2026-07-28 (stateless: no back channel) the call
ends with an `InputRequiredResult`; the client answers and retries, and the tool runs again from
the start — like a graph node after `interrupt()` — with every answer so far (carried in the
sealed `requestState`) returned where it was asked. So a tool should do its side effects after
its questions, and ask them in the same order on every run.

    >>> async def book_table(restaurant: str) -> str:
    ...     answer = await Elicit("How many guests?", {"type": "object",
    ...                           "properties": {"guests": {"type": "integer"}}, "required": ["guests"]})
    ...     if answer.action != "accept":
    ...         return "Cancelled."
    ...     report_progress(1, 2, "booking")
    ...     return f"Booked {restaurant} for {answer.content['guests']}."
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import mcp.types as types
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types import MISSING_REQUIRED_CLIENT_CAPABILITY
from mcp_types.version import is_version_at_least
from pydantic import BaseModel, ValidationError

# logging and roots are deprecated in 2026-07-28 but still part of 2025-11-25, which we serve too
warnings.filterwarnings("ignore", category=MCPDeprecationWarning, module=__name__)

_STATELESS_VERSION = "2026-07-28"
LOG_LEVEL_KEY = "agentforge.log_level"  # in the connection's state: the level logging/setLevel asked for
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_RESULT_TYPES: dict[str, type[BaseModel]] = {
    "elicitation/create": types.ElicitResult,
    "sampling/createMessage": types.CreateMessageResult,
    "roots/list": types.ListRootsResult,
}
_CAPABILITY = {"elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots"}


class _InputRequired(BaseException):
    """Control flow (2026-07-28): the run needs answers the client has not given yet. A
    BaseException, so a tool's own error handling (and `Tool.invoke`'s) lets it pass."""

    def __init__(self, requests: dict[str, types.InputRequest]) -> None:
        super().__init__(", ".join(requests))
        self.requests = requests


class _MissingCapability(BaseException):
    """Control flow: the tool asked for something the client did not declare it can answer."""

    def __init__(self, capability: str) -> None:
        super().__init__(capability)
        self.capability = capability


@dataclass(slots=True)
class _Call:
    """One request being served: its context, the answers the client has given so far, and the
    notifications sent while it runs (flushed before the result goes out)."""

    loop: asyncio.AbstractEventLoop
    ctx: Any
    modern: bool
    answers: dict[str, Any]
    used: dict[str, dict] = field(default_factory=dict)
    asked: int = 0
    pending: list[asyncio.Future] = field(default_factory=list)

    def send(self, coro: Coroutine) -> None:
        """Run a notification coroutine on the server's loop, from a coroutine or a worker thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.pending.append(self.loop.create_task(coro))
        else:
            asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)


_current: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("agentforge_mcp_call", default=None)


async def serve_request(ctx: Any, params: Any, run: Callable[[], Coroutine]) -> Any:
    """Run one tools/call, prompts/get or resources/read with the helpers of this module live;
    a run that still needs answers (2026-07-28) becomes an `InputRequiredResult`."""
    modern = is_stateless(ctx)
    answers: dict[str, Any] = {}
    if modern:
        answers = _decode_state(params.request_state) | dict(params.input_responses or {})
    call = _Call(asyncio.get_running_loop(), ctx, modern, answers)
    token = _current.set(call)
    try:
        try:
            return await run()
        finally:
            if call.pending:
                await asyncio.gather(*call.pending, return_exceptions=True)
    except _InputRequired as missing:
        return types.InputRequiredResult(input_requests=missing.requests, request_state=json.dumps(call.used))
    except _MissingCapability as missing:
        raise MCPError(MISSING_REQUIRED_CLIENT_CAPABILITY,
                       f"this request needs the client's {missing.capability!r} capability, which it did not declare",
                       data={"requiredCapabilities": {missing.capability: {}}}) from None
    finally:
        _current.reset(token)


def is_stateless(ctx: Any) -> bool:
    """Whether the request came in the stateless 2026-07-28 protocol (or later)."""
    return is_version_at_least(ctx.session.protocol_version, _STATELESS_VERSION)


def _decode_state(state: str | None) -> dict[str, Any]:
    # the server's RequestStateBoundary has already verified and unsealed it: it is what we sent
    if not state:
        return {}
    try:
        decoded = json.loads(state)
    except json.JSONDecodeError:
        return {}
    return {key: entry["result"] for key, entry in decoded.items()} if isinstance(decoded, dict) else {}


# --- progress and logs ---------------------------------------------------------------------


def report_progress(progress: float, total: float | None = None, message: str | None = None) -> None:
    """Send a progress notification to the caller (if it asked for them). Works from sync tools
    (worker threads) and async ones; a no-op outside a request served over MCP."""
    call = _current.get()
    if call is not None:
        call.send(call.ctx.session.report_progress(progress, total, message))


def log(level: str, message: Any, logger: str | None = None) -> None:
    """Send a log message to the client (`notifications/message`), if it wants that level; a
    no-op outside a request served over MCP."""
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}")
    call = _current.get()
    if call is None:
        return
    minimum = client_connection(call.ctx).state.get(LOG_LEVEL_KEY, "debug")
    if LOG_LEVELS.index(level) >= LOG_LEVELS.index(minimum):
        call.send(call.ctx.session.send_log_message(level, message, logger, related_request_id=call.ctx.request_id))


def client_connection(ctx: Any) -> Any:
    """The client connection a request came on: it outlives the request, so per-client state
    (the `logging/setLevel` level, resource subscriptions) lives there."""
    return ctx.session._connection


# --- asking the client ---------------------------------------------------------------------


class _Question:
    """A question for the client; `await` it to ask it alone, or pass several to `ask`."""

    request: types.InputRequest
    kind: str

    def __await__(self):
        call = _require_call()
        call.asked += 1
        answers = yield from ask(**{f"{self.kind}-{call.asked}": self}).__await__()
        return next(iter(answers.values()))


class Elicit(_Question):
    """Ask the user for structured input: `message` and a flat JSON schema (or a pydantic model)
    of what to fill in. Answers a `types.ElicitResult` (`action` accept/decline/cancel, `content`)."""

    kind = "elicit"

    def __init__(self, message: str, schema: dict | type[BaseModel]) -> None:
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            schema = schema.model_json_schema()
        self.request = types.ElicitRequest(params=types.ElicitRequestFormParams(message=message, requested_schema=schema))


class Sample(_Question):
    """Ask the client's LLM: a prompt (or a list of `types.SamplingMessage`). Answers a
    `types.CreateMessageResult`."""

    kind = "sample"

    def __init__(self, prompt: str | list[types.SamplingMessage], *, max_tokens: int = 256,
                 system_prompt: str | None = None, temperature: float | None = None) -> None:
        messages = prompt if isinstance(prompt, list) else [
            types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))]
        self.request = types.CreateMessageRequest(params=types.CreateMessageRequestParams(
            messages=messages, max_tokens=max_tokens, system_prompt=system_prompt, temperature=temperature))


class ListRoots(_Question):
    """Ask the client for its roots (the folders or URIs it works in). Answers a
    `types.ListRootsResult`."""

    kind = "roots"

    def __init__(self) -> None:
        self.request = types.ListRootsRequest(params=types.RequestParams())


async def ask(**questions: _Question) -> dict[str, Any]:
    """Ask the client several questions at once, each under its own key (on 2026-07-28 the keys
    are the wire's `inputRequests` keys); returns the answers by key."""
    call = _require_call()
    for question in questions.values():
        capability = _CAPABILITY[question.request.method]
        if not client_supports(capability):
            raise _MissingCapability(capability)
    if not call.modern:
        related = ServerMessageMetadata(related_request_id=call.ctx.request_id)  # rides the request's stream
        replies = await asyncio.gather(*(
            call.ctx.session.send_request(q.request, _RESULT_TYPES[q.request.method], metadata=related)
            for q in questions.values()))
        return dict(zip(questions, replies))
    answers, missing = {}, {}
    for key, question in questions.items():
        answer = _valid_answer(call.answers.get(key), question.request.method)
        if answer is None:
            missing[key] = question.request
        else:
            answers[key] = answer
            call.used[key] = {"method": question.request.method, "result": answer.model_dump(mode="json", by_alias=True,
                                                                                            exclude_none=True)}
    if missing:
        raise _InputRequired(missing)
    return answers


def client_supports(capability: str) -> bool:
    """Whether the client declared `capability` ("elicitation", "sampling" or "roots")."""
    capabilities = _require_call().ctx.session.client_capabilities
    return capabilities is not None and getattr(capabilities, capability, None) is not None


def _valid_answer(raw: Any, method: str) -> BaseModel | None:
    """The client's answer as the result type of the question's method; None when it is absent or
    malformed (the question is then asked again)."""
    if raw is None:
        return None
    if isinstance(raw, BaseModel):
        raw = raw.model_dump(mode="json", by_alias=True, exclude_none=True)
    try:
        return _RESULT_TYPES[method].model_validate(raw)
    except ValidationError:
        return None


def _require_call() -> _Call:
    call = _current.get()
    if call is None:
        raise RuntimeError("asking the client works only inside a tool, prompt or resource served over MCP")
    return call
