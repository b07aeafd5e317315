"""The ASGI guard in front of an A2A agent's routes: credentials and request size.

The agent card stays public (peers read it to learn how to authenticate); every other route wants
one of the keys as `Authorization: Bearer <key>` or `X-API-Key: <key>`. A body over the limit is
refused before anything parses it. Refusals are JSON: a JSON-RPC error object on the JSON-RPC
endpoint, a `google.rpc.Status`-shaped body on the HTTP+JSON routes.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence

from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH

from .card import API_KEY_HEADER, REST_PATH


class A2AGuard:
    def __init__(self, app, *, prefix: str = "", api_keys: Sequence[str] = (), max_body_bytes: int = 1 << 20) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.keys = [k.encode() for k in api_keys]
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == self.prefix or path.startswith(self.prefix + "/")):
            return await self.app(scope, receive, send)
        rest = path.startswith(self.prefix + REST_PATH)
        if path != self.prefix + AGENT_CARD_WELL_KNOWN_PATH and self.keys and not self._authorized(scope):
            return await _refuse(send, 401, "a valid key is required: 'Authorization: Bearer <key>' or "
                                 f"'{API_KEY_HEADER}: <key>'", rest, "UNAUTHENTICATED")
        headers = dict(scope.get("headers") or ())
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body_bytes:
            return await _refuse(send, 413, f"request body is larger than {self.max_body_bytes} bytes", rest,
                                 "INVALID_ARGUMENT")
        if not length.isdigit() and scope.get("method") in ("POST", "PUT", "PATCH"):
            body = b""  # no Content-Length: read the body here, up to the limit, and replay it
            while True:
                message = await receive()
                body += message.get("body", b"")
                if len(body) > self.max_body_bytes:
                    return await _refuse(send, 413, f"request body is larger than {self.max_body_bytes} bytes",
                                         rest, "INVALID_ARGUMENT")
                if message["type"] != "http.request" or not message.get("more_body"):
                    break
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _authorized(self, scope) -> bool:
        headers = dict(scope.get("headers") or ())
        offered = headers.get(API_KEY_HEADER.lower().encode(), b"")
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            offered = authorization[7:].strip()
        return bool(offered) and any(hmac.compare_digest(offered, key) for key in self.keys)


def _replay(body: bytes, receive):
    """A receive channel that yields the already-read `body` first, then the real channel."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(send, status: int, message: str, rest: bool, reason: str) -> None:
    if rest:
        body = {"error": {"code": status, "status": reason, "message": message}}
    else:  # JSON-RPC: -32600 invalid request for a body too large, -32001-style auth error otherwise
        body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600 if status == 413 else -32000, "message": message}}
    headers = [(b"content-type", b"application/json")]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="a2a"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})
