"""A local trace store in SQLite: an exporter that keeps every span, and queries for a viewer."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from .spans import Span, dumps, normalize_trace_id

_COLUMNS = ("trace_id", "span_id", "parent_id", "name", "kind", "start", "end", "inputs", "outputs", "error",
            "attributes")


class SqliteTraceStore:
    """`SqliteTraceStore("traces.sqlite")`: pass it as an exporter; `traces()` lists runs, newest
    first, `trace(trace_id)` gives a run's spans in start order."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")  # the viewer reads while runs write
        self._db.execute("PRAGMA synchronous=NORMAL")  # a trace may be lost on power loss, never corrupted
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS spans (trace_id TEXT, span_id TEXT, parent_id TEXT, name TEXT, "
                             "kind TEXT, start REAL, end REAL, inputs TEXT, outputs TEXT, error TEXT, attributes TEXT, "
                             "PRIMARY KEY (trace_id, span_id))")
            self._db.execute("CREATE INDEX IF NOT EXISTS roots ON spans (parent_id, start)")

    def export(self, spans: list[Span]) -> None:
        rows = [(s.trace_id, s.span_id, s.parent_id, s.name, s.kind, s.start, s.end, dumps(s.inputs),
                 dumps(s.outputs), s.error, dumps(s.attributes)) for s in spans]
        with self._lock, self._db:
            self._db.executemany(f"INSERT OR REPLACE INTO spans VALUES ({', '.join('?' * len(_COLUMNS))})", rows)

    def traces(self, limit: int = 50) -> list[Span]:
        """The root span of each of the latest `limit` traces: a run's, or a served run's whose
        caller (in another process) exported elsewhere."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM spans s WHERE s.parent_id IS NULL OR (s.kind = 'graph' AND NOT EXISTS "
                "(SELECT 1 FROM spans p WHERE p.trace_id = s.trace_id AND p.span_id = s.parent_id)) "
                "ORDER BY s.start DESC LIMIT ?", (limit,)).fetchall()
        return [_span(row) for row in rows]

    def trace(self, trace_id: str) -> list[Span]:
        """The spans of a trace (by its id, or the run id that named it), in start order."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM spans WHERE trace_id IN (?, ?) ORDER BY start, rowid",
                                    (trace_id, normalize_trace_id(trace_id))).fetchall()
        return [_span(row) for row in rows]

    def close(self) -> None:
        self._db.close()


def _span(row: tuple) -> Span:
    values = dict(zip(_COLUMNS, row))
    for key in ("inputs", "outputs", "attributes"):
        values[key] = json.loads(values[key]) if values[key] is not None else None
    return Span(**values)
