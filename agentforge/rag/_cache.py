"""An embedding cache keyed by (model, content hash): re-ingesting unchanged text embeds nothing."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .documents import content_hash
from .embeddings import Embedder


class CachedEmbedder:
    """`embedder` behind a SQLite file of the vectors it already made; `embedded` counts the texts
    that really went through the model."""

    def __init__(self, embedder: Embedder, path: Path) -> None:
        self.embedder, self.name, self.dim = embedder, embedder.name, embedder.dim
        self.embedded = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, hash TEXT, vector BLOB, PRIMARY KEY (model, hash))")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        hashes = [content_hash(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(hashes), 500):
                part = hashes[start:start + 500]
                rows = self._db.execute(f"SELECT hash, vector FROM vectors WHERE model = ? AND hash IN ({','.join('?' * len(part))})",
                                        [self.name, *part])
                found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        missing = list(dict.fromkeys(h for h in hashes if h not in found))
        if missing:
            first = {h: t for t, h in zip(texts, hashes)}
            vectors = self.embedder.embed([first[h] for h in missing])
            found.update(zip(missing, vectors))
            with self._lock, self._db:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                                     [(self.name, h, v.astype(np.float32).tobytes()) for h, v in zip(missing, vectors)])
            self.embedded += len(missing)
        return np.stack([found[h] for h in hashes]) if hashes else np.zeros((0, self.dim), dtype=np.float32)

    def close(self) -> None:
        self._db.close()
