"""Where a knowledge base's graph lives, beside its chunks: per-chunk extractions and reports by
content in SQLite (a killed or budget-stopped run resumes from them), the graph as node-link JSON
and GraphML, reports as JSON, and entity and report embeddings in Chroma collections."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import networkx as nx


class GraphStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(folder / "state.sqlite", timeout=30, check_same_thread=False,
                                  isolation_level=None)
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS extractions (chunk_id TEXT PRIMARY KEY, data TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS reports (key TEXT PRIMARY KEY, data TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        """)

    # --- state ----------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def extractions(self) -> dict[str, dict]:
        return {chunk_id: json.loads(data) for chunk_id, data in self.db.execute("SELECT * FROM extractions")}

    def extracted_ids(self) -> set[str]:
        return {chunk_id for (chunk_id,) in self.db.execute("SELECT chunk_id FROM extractions")}

    def put_extraction(self, chunk_id: str, record: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO extractions VALUES (?, ?)", (chunk_id, json.dumps(record)))

    def drop_extractions(self, chunk_ids: list[str]) -> None:
        self.db.executemany("DELETE FROM extractions WHERE chunk_id = ?", [(c,) for c in chunk_ids])

    def cached_report(self, key: str) -> dict | None:
        row = self.db.execute("SELECT data FROM reports WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_report(self, key: str, report: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO reports VALUES (?, ?)", (key, json.dumps(report)))

    def keep_reports(self, keys: set[str]) -> None:
        """Forget cached reports of communities that no longer exist."""
        gone = [k for (k,) in self.db.execute("SELECT key FROM reports") if k not in keys]
        self.db.executemany("DELETE FROM reports WHERE key = ?", [(k,) for k in gone])

    def clear(self) -> None:
        self.db.executescript("DELETE FROM extractions; DELETE FROM reports; DELETE FROM meta;")
        for name in ("graph.json", "graph.graphml", "reports.json"):
            (self.folder / name).unlink(missing_ok=True)

    # --- the built graph ------------------------------------------------------------------

    def save(self, graph: nx.Graph, communities: list[dict], reports: list[dict]) -> None:
        """Write the graph, its communities and reports; each file replaced whole."""
        data = nx.node_link_data(graph, edges="edges")
        data["communities"] = communities
        _write(self.folder / "graph.json", json.dumps(data))
        _write(self.folder / "reports.json", json.dumps(reports))
        flat = graph.copy()
        for _, attrs in flat.nodes(data=True):
            attrs.update({k: json.dumps(v) for k, v in attrs.items() if isinstance(v, list)})
        for _, _, attrs in flat.edges(data=True):
            attrs.update({k: json.dumps(v) for k, v in attrs.items() if isinstance(v, list)})
        temp = self.folder / "graph.graphml.tmp"
        nx.write_graphml(flat, temp)
        temp.replace(self.folder / "graph.graphml")

    def close(self) -> None:
        self.db.close()


def load(folder: Path) -> tuple[nx.Graph, list[dict], list[dict]]:
    """The saved graph, communities and reports (empty when nothing was built yet)."""
    if not (folder / "graph.json").is_file():
        return nx.Graph(), [], []
    data = json.loads((folder / "graph.json").read_text())
    communities = data.pop("communities", [])
    graph = nx.node_link_graph(data, edges="edges")
    return graph, communities, json.loads((folder / "reports.json").read_text())


def sync_collection(collection, wanted: dict[str, tuple[str, dict]], embed) -> None:
    """Make a Chroma collection hold exactly `wanted` (id -> (text, metadata)); only new or changed
    texts are embedded."""
    have = collection.get(include=["documents", "metadatas"])
    current = {i: (doc, meta) for i, doc, meta in zip(have["ids"], have["documents"], have["metadatas"])}
    gone = [i for i in current if i not in wanted]
    if gone:
        collection.delete(ids=gone)
    changed = [i for i, value in wanted.items() if current.get(i) != value]
    for start in range(0, len(changed), 500):
        ids = changed[start:start + 500]
        collection.upsert(ids=ids, embeddings=embed([wanted[i][0] for i in ids]),
                          documents=[wanted[i][0] for i in ids], metadatas=[wanted[i][1] for i in ids])


def _write(path: Path, text: str) -> None:
    temp = path.with_suffix(path.suffix + ".tmp")
    temp.write_text(text)
    temp.replace(path)
