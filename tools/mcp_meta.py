"""What every MCP tool call carries in its request `_meta` besides its own fields: entries from
providers the application layer registers (`agentforge.tracing` sends the W3C `traceparent` that
MCP reserves there). Kept apart from the client so registering costs no import of the SDK."""

from __future__ import annotations

from collections.abc import Callable

_PROVIDERS: list[Callable[[], dict[str, str]]] = []


def add_request_meta(provider: Callable[[], dict[str, str]]) -> None:
    """Merge `provider()` into the `_meta` of every MCP tool call; it is called in the caller's
    context when the call is made."""
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)


def request_meta() -> dict[str, str] | None:
    """The registered providers' entries for a call made now (None when there are none)."""
    meta: dict[str, str] = {}
    for provider in _PROVIDERS:
        try:
            meta.update(provider())
        except Exception:  # metadata is best effort: it never costs the call
            continue
    return meta or None
