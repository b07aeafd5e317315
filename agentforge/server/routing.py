"""Smart routing: several backends behind one server — the embedded engine and OpenAI-compatible
upstreams — with model aliases, routing rules and fallback to the next backend when one fails or
is overloaded."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx

EMBEDDED = "embedded"


@dataclass
class Upstream:
    """An OpenAI-compatible server (`url` is its base, e.g. http://host:8000/v1) serving `models`;
    `model` renames the requested model on the way out (default: unchanged)."""

    name: str
    url: str
    models: list[str] = field(default_factory=list)
    model: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    timeout: float = 120.0

    def __post_init__(self) -> None:
        if not self.name or self.name == EMBEDDED:
            raise ValueError(f"invalid upstream name {self.name!r}")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"upstream {self.name!r}: url must be http(s), got {self.url!r}")
        self.url = self.url.rstrip("/")
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, connect=5.0))

    def headers(self) -> dict[str, str]:
        key = self.api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None)
        return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass
class Route:
    """A rule: requests that match every given condition go to `backends`, tried in order."""

    backends: list[str]
    model: str | None = None  # the requested model, after aliases
    tools: bool | None = None  # True: only requests with tools; False: only without
    min_prompt_chars: int | None = None
    max_prompt_chars: int | None = None

    def matches(self, model: str, body: dict[str, Any]) -> bool:
        chars = sum(len(m.get("content") or "") for m in body.get("messages", []) if isinstance(m.get("content"), str))
        chars += len(body.get("prompt") or "") if isinstance(body.get("prompt"), str) else 0
        return ((self.model is None or self.model == model)
                and (self.tools is None or self.tools == bool(body.get("tools")))
                and (self.min_prompt_chars is None or chars >= self.min_prompt_chars)
                and (self.max_prompt_chars is None or chars <= self.max_prompt_chars))


class Router:
    """Which backends may serve a request, in the order to try them."""

    def __init__(self, embedded_model: str, upstreams: list[Upstream], aliases: dict[str, str], routes: list[Route]) -> None:
        self.embedded_model = embedded_model
        self.upstreams = {u.name: u for u in upstreams}
        self.aliases = dict(aliases)
        self.routes = routes
        self.serves: dict[str, list[str]] = {embedded_model: [EMBEDDED]}
        for u in upstreams:
            for m in u.models:
                self.serves.setdefault(m, []).append(u.name)
        for route in routes:
            for name in route.backends:
                if name != EMBEDDED and name not in self.upstreams:
                    raise ValueError(f"route names unknown backend {name!r}")
        for alias, target in self.aliases.items():
            if target not in self.serves:
                raise ValueError(f"alias {alias!r} points to unknown model {target!r}")

    @property
    def models(self) -> list[str]:
        return list(self.serves) + [a for a in self.aliases if a not in self.serves]

    def resolve(self, model: str) -> str | None:
        model = self.aliases.get(model, model)
        return model if model in self.serves else None

    def candidates(self, model: str, body: dict[str, Any]) -> list[str]:
        """Backends for the (resolved) model: the first matching rule's, else those serving it."""
        for route in self.routes:
            if route.matches(model, body):
                return route.backends
        return self.serves[model]

    @classmethod
    def from_config(cls, embedded_model: str, upstreams: list[dict], aliases: dict, routes: list[dict]) -> Router:
        try:
            return cls(embedded_model, [Upstream(**u) for u in upstreams], aliases, [Route(**r) for r in routes])
        except TypeError as exc:
            raise ValueError(f"invalid routing configuration: {exc}") from exc
