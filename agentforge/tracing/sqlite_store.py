"""A local trace store in SQLite: an exporter that keeps every span, and queries for a viewer.

An export writes one row per trace it touches (its spans as one JSON document) and one per span a
viewer may list (a run's root): a row per span, with its two indexes, cost 13 µs a span, as much as
the 50-node run it recorded. A batch is named by its span ids: the same spans exported again replace
their row, some of them exported again (a root finished later) add one, and the newest copy of a span
is the one read."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import warnings
from pathlib import Path

from ._export_thread import at_batch_end, on_tracing_thread
from .spans import Span, dumps, normalize_trace_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (trace_id TEXT NOT NULL, batch_id TEXT NOT NULL, span_ids TEXT NOT NULL,
    spans TEXT NOT NULL, PRIMARY KEY (trace_id, batch_id));
CREATE TABLE IF NOT EXISTS heads (trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT, start REAL,
    span TEXT NOT NULL, PRIMARY KEY (trace_id, span_id));
CREATE INDEX IF NOT EXISTS heads_by_start ON heads (start);
"""


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
            self._db.executescript(_SCHEMA)
            self._migrate_span_rows()

    def export(self, spans: list[Span]) -> None:
        """Store `spans`. On the tracing thread the transaction stays open until the thread's batch
        is done (one commit for up to `BATCH` runs: a commit per run cost as much as its rows)."""
        with self._lock:
            if not self._db.in_transaction:
                self._db.execute("BEGIN")
            self._db.execute("SAVEPOINT export")  # a failing export undoes its own rows, not the batch's
            try:
                self._write(spans)
            except BaseException:
                self._db.execute("ROLLBACK TO export")
                raise
            finally:
                self._db.execute("RELEASE export")
                if on_tracing_thread():
                    at_batch_end(self._commit)
                else:
                    self._db.commit()

    def _commit(self) -> None:
        with self._lock:
            try:
                self._db.commit()
            except sqlite3.ProgrammingError:  # closed meanwhile: `close` committed
                pass
            except sqlite3.Error as exc:  # a full disk, a locked file: this batch's traces are lost, not the run
                self._db.rollback()
                warnings.warn(f"trace store {self.path} dropped a batch of traces: {exc}", RuntimeWarning, stacklevel=1)

    def _write(self, spans: list[Span]) -> None:
        by_trace: dict[str, list[Span]] = {}
        for span in spans:
            by_trace.setdefault(span.trace_id, []).append(span)
        batches, heads = [], []
        for trace_id, group in by_trace.items():
            rows = [_row(s) for s in group]
            ids = _ids(s.span_id for s in group)
            batches.append((trace_id, hashlib.blake2b(ids.encode(), digest_size=8).hexdigest(), ids, dumps(rows)))
            heads += [(trace_id, s.span_id, s.parent_id, s.start, dumps(row)) for s, row in zip(group, rows)
                      if s.parent_id is None or s.kind == "graph"]  # what `traces()` may list
        self._db.executemany("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?)", batches)
        self._db.executemany("INSERT OR REPLACE INTO heads VALUES (?, ?, ?, ?, ?)", heads)

    def traces(self, limit: int = 50) -> list[Span]:
        """The root span of each of the latest `limit` traces: a run's, or a served run's whose
        caller (in another process) exported elsewhere."""
        with self._lock:
            rows = self._db.execute(
                "SELECT trace_id, span FROM heads h WHERE h.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM batches b "
                "WHERE b.trace_id = h.trace_id AND instr(b.span_ids, ' ' || h.parent_id || ' ') > 0) "
                "ORDER BY h.start DESC LIMIT ?", (limit,)).fetchall()
        return [Span(trace_id, *json.loads(row)) for trace_id, row in rows]

    def trace(self, trace_id: str) -> list[Span]:
        """The spans of a trace (by its id, or the run id that named it), in start order."""
        with self._lock:
            rows = self._db.execute("SELECT trace_id, spans FROM batches WHERE trace_id IN (?, ?) ORDER BY rowid",
                                    (trace_id, normalize_trace_id(trace_id))).fetchall()
        spans = {}  # by span id: a span exported again replaces the earlier copy
        for stored_id, batch in rows:
            for row in json.loads(batch):
                spans[row[0]] = Span(stored_id, *row)
        return sorted(spans.values(), key=lambda s: s.start)

    def close(self) -> None:
        """Close the file, committing what a batch still holds open."""
        with self._lock:
            if self._db.in_transaction:
                self._db.commit()
            self._db.close()

    def _migrate_span_rows(self) -> None:
        """A store written before batches (a `spans` table, a row per span) moves over, nothing lost."""
        if not self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'spans'").fetchone():
            return
        columns = [c[1] for c in self._db.execute("PRAGMA table_info(spans)")]
        rows = self._db.execute("SELECT * FROM spans ORDER BY trace_id, start, rowid").fetchall()
        spans = [Span(**{k: (json.loads(v) if k in ("inputs", "outputs", "attributes") and v is not None else v)
                         for k, v in zip(columns, row)}) for row in rows]
        self._write(spans)
        self._db.execute("DROP TABLE IF EXISTS spans")  # another process may have moved it meanwhile


def _row(span: Span) -> tuple:
    """A span's fields after its trace id, in `Span`'s order (orjson writes a tuple 9x faster than
    a slotted dataclass)."""
    return (span.span_id, span.parent_id, span.name, span.kind, span.start, span.end, span.inputs, span.outputs,
            span.error, span.attributes)


def _ids(span_ids) -> str:
    """Span ids, space-separated and space-framed, so SQL's `instr` finds ' id ' exactly."""
    return f" {' '.join(span_ids)} "

