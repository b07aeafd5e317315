"""What `StateGraph.compile()` freezes: nodes, edges and channels, the structure the runtime executes."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .state import Channel
from .types import CachePolicy, RetryPolicy

# Keyword arguments a node's action may ask for by naming them (LangGraph's names).
INJECTABLE = ("config", "runtime", "writer", "store", "store")


@dataclass(slots=True)
class Node:
    name: str
    action: Callable[..., Any]
    defer: bool = False
    retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None
    cache_policy: CachePolicy | None = None
    destinations: tuple[str, ...] = ()
    subgraph: Any = None  # a compiled graph used as this node
    is_async: bool = False
    injected: tuple[str, ...] = ()  # what the action takes besides the state: "config", "runtime", "writer"
    input_schema: type | None = None  # the node sees only these keys (from its first parameter's type)
    input_keys: frozenset[str] = frozenset()


@dataclass(slots=True)
class Branch:
    """A conditional edge: `path(state)` names the next node(s) or Sends; `path_map` translates."""

    path: Callable[..., Any]
    path_map: dict[Hashable, str] | None = None
    is_async: bool = False


@dataclass(slots=True)
class GraphSpec:
    """Everything `compile()` froze: what the runtime executes."""

    state_schema: type
    context_schema: type | None
    input_schema: type
    output_schema: type
    channels: dict[str, Channel]
    input_keys: tuple[str, ...]
    output_keys: tuple[str, ...]
    nodes: dict[str, Node]
    edges: dict[str, list[str]] = field(default_factory=dict)  # source -> targets
    joins: list[tuple[tuple[str, ...], str]] = field(default_factory=list)  # (sources, target)
    branches: dict[str, list[Branch]] = field(default_factory=dict)
    output_key_set: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.output_key_set = frozenset(self.output_keys)
