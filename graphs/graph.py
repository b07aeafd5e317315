"""`StateGraph`: declare nodes and edges over a state schema, then `compile()` it into a runnable graph."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from .pregel import CompiledStateGraph
from .spec import INJECTABLE, Branch, GraphSpec, Node
from .state import channels_of, is_state_schema
from .types import END, START, CachePolicy, GraphValidationError, RetryPolicy

_RESERVED = (":", "|")


class StateGraph:
    """A graph whose nodes read the shared state and return updates to it.

    >>> graph = StateGraph(State)
    >>> graph.add_node("fetch", fetch).add_node("answer", answer)
    >>> graph.add_edge(START, "fetch").add_edge("fetch", "answer").add_edge("answer", END)
    >>> app = graph.compile(checkpointer=InMemorySaver())
    """

    def __init__(
        self,
        state_schema: type,
        context_schema: type | None = None,
        *,
        input_schema: type | None = None,
        output_schema: type | None = None,
    ) -> None:
        self.state_schema = state_schema
        self.context_schema = context_schema
        self.input_schema = input_schema or state_schema
        self.output_schema = output_schema or state_schema
        self.channels = channels_of(state_schema)
        for schema in (self.input_schema, self.output_schema):
            for name, channel in channels_of(schema).items():
                self.channels.setdefault(name, channel)
        self.nodes: dict[str, Node] = {}
        self.edges: set[tuple[str, str]] = set()
        self.joins: set[tuple[tuple[str, ...], str]] = set()
        self.branches: dict[str, list[Branch]] = {}
        self.compiled = False

    def add_node(
        self,
        node: str | Callable,
        action: Callable | None = None,
        *,
        defer: bool = False,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        cache_policy: CachePolicy | None = None,
        destinations: Sequence[str] | dict[str, str] | None = None,
        input_schema: type | None = None,
    ) -> StateGraph:
        """Add a node: a function (sync or async) of the state — optionally also of the run config —
        returning an update, a `Command`, or None; or a compiled graph, run as a subgraph.

        A node whose first parameter is typed with another schema (or given `input_schema`) sees
        only that schema's keys; its keys not in the state schema become private channels."""
        if action is None:
            if isinstance(node, str):
                raise GraphValidationError(f"node {node!r} needs an action")
            action, node = node, getattr(node, "name", None) or getattr(node, "__name__", None)
        if not isinstance(node, str) or not node:
            raise GraphValidationError(f"a node needs a non-empty string name, got {node!r}")
        if node in (START, END):
            raise GraphValidationError(f"Node `{node}` is reserved.")
        if any(c in node for c in _RESERVED):
            raise GraphValidationError(f"'{node}' is not a valid node name: it may not contain {_RESERVED}")
        if node in self.nodes:
            raise GraphValidationError(f"Node `{node}` already present.")
        if self.compiled:
            raise GraphValidationError("the graph is already compiled; add nodes before compile()")
        subgraph = action if hasattr(action, "_is_compiled_graph") else None
        if subgraph is None and not callable(action):
            raise GraphValidationError(f"the action of node {node!r} must be callable or a compiled graph")
        policies = [retry_policy] if isinstance(retry_policy, RetryPolicy) or retry_policy is None else list(retry_policy)
        if not all(p is None or isinstance(p, RetryPolicy) for p in policies):
            raise GraphValidationError("retry_policy must be a RetryPolicy or a sequence of them")
        if input_schema is None and subgraph is None:
            input_schema = _first_parameter_schema(action)
        if input_schema is self.state_schema:
            input_schema = None
        if input_schema is not None:
            try:
                node_channels = channels_of(input_schema)
            except TypeError as exc:
                raise GraphValidationError(f"node {node!r}: {exc}") from exc
            for name, channel in node_channels.items():
                self.channels.setdefault(name, channel)
        self.nodes[node] = Node(
            node, action, defer, retry_policy, cache_policy,
            tuple(destinations.values() if isinstance(destinations, dict) else destinations or ()),
            subgraph, subgraph is None and _is_async(action), () if subgraph is not None else _injected(action),
            input_schema, frozenset(channels_of(input_schema)) if input_schema is not None else frozenset(),
        )
        return self

    def add_edge(self, start_key: str | Sequence[str], end_key: str) -> StateGraph:
        """An edge: `end_key` runs after `start_key`. With a list of sources, `end_key` runs once
        all of them have finished (a join)."""
        if isinstance(start_key, str):
            if start_key == END:
                raise GraphValidationError("END cannot be a start node")
            if end_key == START:
                raise GraphValidationError("START cannot be an end node")
            self.edges.add((start_key, end_key))
            return self
        sources = tuple(start_key)
        if not sources or any(s == END for s in sources) or end_key == START:
            raise GraphValidationError(f"invalid join edge {sources!r} -> {end_key!r}")
        self.joins.add((sources, end_key))
        return self

    def add_conditional_edges(
        self, source: str, path: Callable, path_map: dict[Hashable, str] | Sequence[str] | None = None
    ) -> StateGraph:
        """After `source`, call `path(state)` (sync or async): it returns a node name, END, a Send,
        or a list of them (all run, in parallel). `path_map` maps its return values to node names."""
        if not callable(path):
            raise GraphValidationError("path must be callable")
        if path_map is not None and not isinstance(path_map, dict):
            path_map = {name: name for name in path_map}
        self.branches.setdefault(source, []).append(Branch(path, path_map, _is_async(path)))
        return self

    def add_sequence(self, nodes: Sequence[Callable | tuple[str, Callable]]) -> StateGraph:
        """Add nodes that run one after another, each edge included."""
        if not nodes:
            raise GraphValidationError("add_sequence needs at least one node")
        previous = None
        for item in nodes:
            name, action = item if isinstance(item, tuple) else (getattr(item, "__name__", None), item)
            self.add_node(name, action)
            if previous is not None:
                self.add_edge(previous, name)
            previous = name
        return self

    def set_entry_point(self, key: str) -> StateGraph:
        return self.add_edge(START, key)

    def set_conditional_entry_point(self, path: Callable, path_map: dict | Sequence[str] | None = None) -> StateGraph:
        return self.add_conditional_edges(START, path, path_map)

    def set_finish_point(self, key: str) -> StateGraph:
        return self.add_edge(key, END)

    def validate(self) -> None:
        known = set(self.nodes) | {START}
        sources = {s for s, _ in self.edges} | {s for srcs, _ in self.joins for s in srcs} | set(self.branches)
        for source in sources:
            if source not in known:
                raise GraphValidationError(f"Found edge starting at unknown node '{source}'")
        for target in {t for _, t in self.edges} | {t for _, t in self.joins}:
            if target not in known | {END}:
                raise GraphValidationError(f"Found edge ending at unknown node `{target}`")
        for branches in self.branches.values():
            for branch in branches:
                for target in (branch.path_map or {}).values():
                    if target not in known | {END}:
                        raise GraphValidationError(f"At conditional edge: unknown node `{target}` in path_map")
        has_entry = any(s == START for s, _ in self.edges) or START in self.branches or any(
            START in srcs for srcs, _ in self.joins)
        if not has_entry:
            raise GraphValidationError(
                "Graph must have an entrypoint: add at least one edge from START to another node")

    def compile(
        self,
        checkpointer: Any = None,
        *,
        cache: Any = None,
        interrupt_before: Sequence[str] | str | None = None,
        interrupt_after: Sequence[str] | str | None = None,
        name: str | None = None,
        debug: bool = False,
        store: Any = None,
    ):
        """Freeze the graph into a `CompiledStateGraph` (invoke / stream / get_state ...).

        `checkpointer` persists every step (needed for interrupts, resume and time travel);
        `interrupt_before` / `interrupt_after` pause around the named nodes ("*" for all); `store`
        (LangGraph's `BaseStore` API, e.g. `agentforge.agents.InMemoryStore`) is long-term memory
        shared by every thread, reachable from nodes and tools with `get_store()`.
        """
        self.validate()
        for names in (interrupt_before, interrupt_after):
            for n in ([] if names in (None, "*") else [names] if isinstance(names, str) else names):
                if n not in self.nodes:
                    raise GraphValidationError(f"Interrupt node `{n}` not found")
        edges: dict[str, list[str]] = {}
        for source, target in sorted(self.edges):
            edges.setdefault(source, []).append(target)
        spec = GraphSpec(
            self.state_schema, self.context_schema, self.input_schema, self.output_schema, self.channels,
            tuple(channels_of(self.input_schema)), tuple(channels_of(self.output_schema)),
            dict(self.nodes), edges, sorted(self.joins), {k: list(v) for k, v in self.branches.items()},
        )
        self.compiled = True
        return CompiledStateGraph(
            spec, checkpointer=checkpointer, cache=cache, interrupt_before=interrupt_before,
            interrupt_after=interrupt_after, name=name or "LangGraph", debug=debug, store=store,
        )


def _is_async(fn: Callable) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def _first_parameter_schema(fn: Callable) -> type | None:
    """The state schema a node function declares with its first parameter's type hint, if any."""
    try:
        first = next(iter(inspect.signature(fn).parameters.values()), None)
        hint = typing.get_type_hints(fn).get(first.name) if first is not None else None
    except Exception:  # no signature, or hints that do not resolve: the node sees the whole state
        return None
    return hint if is_state_schema(hint) else None


def _injected(fn: Callable) -> tuple[str, ...]:
    """The keyword arguments among INJECTABLE that `fn` takes."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return ()
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(name for name in INJECTABLE if name in params and params[name].kind in keyword)
