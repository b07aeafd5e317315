"""What an MCP server serves besides tools — resources, resource templates and prompts — and
how the values they produce become MCP content."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mcp.types as types

from .tool import _as_text

CONTENT_BLOCKS = (types.TextContent, types.ImageContent, types.AudioContent, types.EmbeddedResource,
                  types.ResourceLink)


@dataclass(slots=True)
class Resource:
    """A readable document: `read()` returns its text, or bytes for binary content (called on
    every read; it may be async and may ask the client)."""

    uri: str
    name: str
    read: Callable[[], Any]
    description: str = ""
    mime_type: str = "text/plain"


@dataclass(slots=True)
class ResourceTemplate:
    """A family of resources, `uri_template` with `{variables}` (RFC 6570, level 1: a variable
    matches one path segment); `read(**variables)` returns text or bytes. `complete(variable,
    prefix)` may suggest values for a variable."""

    uri_template: str
    name: str
    read: Callable[..., Any]
    description: str = ""
    mime_type: str = "text/plain"
    complete: Callable[[str, str], list[str]] | None = None
    pattern: re.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        parts = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", self.uri_template)
        if len(parts) == 1:
            raise ValueError(f"resource template {self.uri_template!r} has no {{variable}}")
        regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
        self.pattern = re.compile(regex)

    def match(self, uri: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(uri)
        return found.groupdict() if found else None


@dataclass(slots=True)
class Prompt:
    """A prompt template: `render(**arguments)` returns the user message text, or a list of
    messages — each a string (user text), an MCP content block, a `types.PromptMessage` or a
    `{"role", "content"}` dict. It may be async and may ask the client. `complete(argument,
    prefix)` may suggest argument values."""

    name: str
    render: Callable[..., Any]
    description: str = ""
    arguments: list[tuple[str, str, bool]] = field(default_factory=list)  # (name, description, required)
    complete: Callable[[str, str], list[str]] | None = None


async def call_maybe_async(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a user's function from the event loop: async ones are awaited, sync ones run in a
    worker thread (so a slow one does not stall the loop)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


def prompt_messages(value: Any) -> list[types.PromptMessage]:
    items = value if isinstance(value, list) else [value]
    messages = []
    for item in items:
        if isinstance(item, types.PromptMessage):
            messages.append(item)
            continue
        role, content = "user", item
        if isinstance(item, dict):
            role, content = item.get("role", "user"), item.get("content", "")
        if not isinstance(content, CONTENT_BLOCKS):
            content = types.TextContent(type="text", text=_as_text(content))
        messages.append(types.PromptMessage(role=role, content=content))
    return messages
