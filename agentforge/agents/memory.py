"""Long-term memory: a namespaced key-value store with LangGraph's `BaseStore` API (`put`, `get`,
`search`, `delete`, `list_namespaces`, and their async twins), semantic search through any
embedding function, and the tools an agent remembers and recalls with.

    store = InMemoryStore(index={"embed": embed_texts, "dims": 384})
    store.put(("users", "ada"), "food", {"text": "Ada is vegetarian"})
    store.search(("users", "ada"), query="what does Ada eat?")

A graph compiled with `store=` hands it to its nodes and their tools (`get_store()`), across threads.
`SqliteStore` (memory_sqlite.py) keeps it in a file.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from agentforge.graphs import get_store
from agentforge.tools import Tool

Namespace = tuple[str, ...]
Embed = Callable[[list[str]], Sequence[Sequence[float]]]


@dataclass(frozen=True, slots=True)
class Item:
    """A stored value; `score` is its similarity to the query in a semantic search."""

    value: dict
    key: str
    namespace: Namespace
    created_at: datetime
    updated_at: datetime
    score: float | None = None


class BaseStore:
    """The store API; backends implement `_write`, `_read`, `_remove` and `_scan`.

    `index={"embed": fn, "dims": n, "fields": ["text"]}` turns on semantic search: `fn` maps texts
    to vectors (any embedding function); `fields` (default: the whole value as JSON) are what gets
    embedded. Without an index, `search` filters and lists in update order.
    """

    def __init__(self, *, index: dict | None = None) -> None:
        if index is not None:
            if not callable(index.get("embed")) or not isinstance(index.get("dims"), int) or index["dims"] < 1:
                raise ValueError("index needs 'embed' (texts -> vectors) and 'dims' (a positive int)")
        self.index = index
        self._lock = threading.Lock()

    # --- the API ----------------------------------------------------------------------------

    def put(self, namespace: Namespace, key: str, value: dict, index: bool | list[str] | None = None) -> None:
        """Store `value` under (namespace, key), replacing what was there. `index=False` skips
        embedding it; a list of fields embeds those instead of the index's."""
        namespace = _namespace(namespace)
        if not isinstance(key, str) or not key:
            raise ValueError("key must be a non-empty string")
        if not isinstance(value, dict):
            raise ValueError(f"value must be a dict, got {type(value).__name__}")
        json.dumps(value)  # refuse what cannot be stored, here and not later
        vector = None
        if self.index is not None and index is not False:
            vector = self._embed([_text(value, index if isinstance(index, list) else self.index.get("fields"))])[0]
        now = datetime.now(timezone.utc)
        with self._lock:
            old = self._read(namespace, key)
            self._write(Item(value, key, namespace, old.created_at if old else now, now), vector)

    def get(self, namespace: Namespace, key: str) -> Item | None:
        with self._lock:
            return self._read(_namespace(namespace), key)

    def delete(self, namespace: Namespace, key: str) -> None:
        with self._lock:
            self._remove(_namespace(namespace), key)

    def search(self, namespace_prefix: Namespace, *, query: str | None = None, filter: dict | None = None,
               limit: int = 10, offset: int = 0) -> list[Item]:
        """Items under the prefix whose values match `filter` (equal fields), ranked by similarity
        to `query` when the store has an index, else most recently updated first."""
        prefix = _namespace(namespace_prefix, allow_empty=True)
        if limit < 1 or offset < 0:
            raise ValueError("limit must be >= 1 and offset >= 0")
        with self._lock:
            found = [(item, vector) for item, vector in self._scan(prefix)
                     if not filter or all(item.value.get(k) == v for k, v in filter.items())]
        if query is not None and self.index is not None:
            q = np.asarray(self._embed([query])[0], dtype=np.float32)
            scored = [(item, _cosine(q, vector)) for item, vector in found if vector is not None]
            scored.sort(key=lambda pair: -pair[1])
            return [_scored(item, score) for item, score in scored[offset:offset + limit]]
        found.sort(key=lambda pair: pair[0].updated_at, reverse=True)
        return [item for item, _ in found[offset:offset + limit]]

    def list_namespaces(self, *, prefix: Namespace | None = None, max_depth: int | None = None,
                        limit: int = 100, offset: int = 0) -> list[Namespace]:
        with self._lock:
            names = {item.namespace for item, _ in self._scan(_namespace(prefix or (), allow_empty=True))}
        if max_depth is not None:
            names = {n[:max_depth] for n in names}
        return sorted(names)[offset:offset + limit]

    async def aput(self, namespace: Namespace, key: str, value: dict, index: bool | list[str] | None = None) -> None:
        await asyncio.to_thread(self.put, namespace, key, value, index)

    async def aget(self, namespace: Namespace, key: str) -> Item | None:
        return await asyncio.to_thread(self.get, namespace, key)

    async def adelete(self, namespace: Namespace, key: str) -> None:
        await asyncio.to_thread(self.delete, namespace, key)

    async def asearch(self, namespace_prefix: Namespace, **kwargs: Any) -> list[Item]:
        return await asyncio.to_thread(lambda: self.search(namespace_prefix, **kwargs))

    def close(self) -> None:
        """Release the backend's connections (a store is also a context manager)."""

    def __enter__(self) -> BaseStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- backends -------------------------------------------------------------------------

    def _write(self, item: Item, vector: np.ndarray | None) -> None:
        raise NotImplementedError

    def _read(self, namespace: Namespace, key: str) -> Item | None:
        raise NotImplementedError

    def _remove(self, namespace: Namespace, key: str) -> None:
        raise NotImplementedError

    def _scan(self, prefix: Namespace) -> Iterable[tuple[Item, np.ndarray | None]]:
        raise NotImplementedError

    def _embed(self, texts: list[str]) -> list[np.ndarray]:
        vectors = [np.asarray(v, dtype=np.float32) for v in self.index["embed"](texts)]
        if len(vectors) != len(texts) or any(v.shape != (self.index["dims"],) for v in vectors):
            raise ValueError(f"the embedding function must return {len(texts)} vectors of {self.index['dims']} floats")
        return vectors


class InMemoryStore(BaseStore):
    """A store in this process's memory."""

    def __init__(self, *, index: dict | None = None) -> None:
        super().__init__(index=index)
        self._items: dict[tuple[Namespace, str], tuple[Item, np.ndarray | None]] = {}

    def _write(self, item, vector):
        self._items[(item.namespace, item.key)] = (item, vector)

    def _read(self, namespace, key):
        found = self._items.get((namespace, key))
        return found[0] if found else None

    def _remove(self, namespace, key):
        self._items.pop((namespace, key), None)

    def _scan(self, prefix):
        return [pair for (namespace, _), pair in self._items.items() if namespace[:len(prefix)] == prefix]


def memory_tools(namespace: Namespace = ("memories",)) -> list[Tool]:
    """`remember` and `recall`: tools that write to and search the running graph's store."""
    namespace = _namespace(namespace)

    def remember(key: str, content: str) -> str:
        """Save a fact for later conversations under a short key (saving the same key again replaces it)."""
        _store().put(namespace, key, {"text": content})
        return f"Remembered {key!r}."

    def recall(query: str) -> list[str]:
        """Search the saved facts for the ones about `query`."""
        return [item.value.get("text", json.dumps(item.value)) for item in _store().search(namespace, query=query, limit=5)]

    return [Tool(remember), Tool(recall)]


def _store() -> BaseStore:
    store = get_store()
    if store is None:
        raise RuntimeError("this graph has no store: compile it (or create the agent) with store=...")
    return store


def _namespace(namespace: Any, allow_empty: bool = False) -> Namespace:
    if not isinstance(namespace, tuple) or not all(isinstance(p, str) and p and "\x1f" not in p for p in namespace):
        raise ValueError(f"a namespace is a tuple of non-empty strings, got {namespace!r}")
    if not namespace and not allow_empty:
        raise ValueError("a namespace needs at least one part")
    return namespace


def _text(value: dict, fields: list[str] | None) -> str:
    if not fields or fields == ["$"]:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    parts = []
    for name in fields:
        node: Any = value
        for step in name.split("."):
            node = node.get(step) if isinstance(node, dict) else None
        if node is not None:
            parts.append(node if isinstance(node, str) else json.dumps(node, ensure_ascii=False))
    return "\n".join(parts)


def _cosine(q: np.ndarray, v: np.ndarray) -> float:
    denominator = float(np.linalg.norm(q) * np.linalg.norm(v)) or 1.0
    return float(q @ v) / denominator


def _scored(item: Item, score: float) -> Item:
    return Item(item.value, item.key, item.namespace, item.created_at, item.updated_at, score)
