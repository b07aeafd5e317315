"""`KnowledgeBase`: documents in, cited hits out. Chunks live in a Chroma collection (embedded,
or on a `chroma run` server), BM25 is built over the same chunks, and ingestion is incremental
and restartable: each file is reconciled to exactly its current chunks, so a killed run leaves
a consistent base and re-running it finishes the job."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._bm25 import BM25Index
from ._cache import CachedEmbedder
from ._chroma import embedding_function, open_client
from .documents import Chunk, Document, Hit, content_hash
from .embeddings import Embedder, LocalEmbedder
from .loaders import MAX_FILE_BYTES, LoadError, check_file, iter_files, load_file
from .rerank import Reranker
from .retrieval import maximal_marginal_relevance, reciprocal_rank_fusion
from .splitter import Splitter

MODES = ("hybrid", "dense", "bm25")
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_DOC_META = ("format", "page", "line", "title")


def default_path(name: str) -> Path:
    """Where knowledge base `name` lives unless told: $AGENTFORGE_DATA_DIR, else the user's data directory."""
    import os

    import platformdirs

    return Path(os.environ.get("AGENTFORGE_DATA_DIR") or platformdirs.user_data_dir("agentforge")) / "knowledge" / name


@dataclass(slots=True)
class IngestStats:
    """What an ingest did: chunk counts by outcome, `chunks` now indexed from the given paths,
    `embedded` texts that went through the model (cache misses), files that failed in `errors`."""

    documents: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    skipped: int = 0
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0
    errors: list[LoadError] = field(default_factory=list)


class KnowledgeBase:
    """A named, persistent collection of document chunks with dense, BM25 and hybrid search.

    >>> kb = KnowledgeBase("docs")
    >>> kb.ingest("docs/")                       # again: nothing re-embedded
    >>> for hit in kb.search("how do I install it?", k=3): print(hit.source, hit.score)

    `url="http://127.0.0.1:8000"` keeps the chunks on a Chroma server (`chroma run`) instead of
    in `path`; `weights` (dense, BM25) and `rank_constant` tune the hybrid fusion.
    """

    def __init__(self, name: str, *, path: str | Path | None = None, url: str | None = None,
                 embedder: Embedder | None = None, chunk_tokens: int = 200, overlap_tokens: int = 30,
                 weights: tuple[float, float] = (1.0, 1.0), rank_constant: int = 60,
                 max_file_bytes: int = MAX_FILE_BYTES) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"knowledge base names are 1-63 letters, digits, '.', '_' or '-', "
                             f"starting and ending with a letter or digit; got {name!r}")
        if len(weights) != 2 or any(w < 0 for w in weights) or not any(weights):
            raise ValueError("weights are two non-negative numbers (dense, BM25), not both zero")
        if not isinstance(rank_constant, int) or rank_constant < 1:
            raise ValueError("rank_constant must be a positive integer")
        self.name, self.weights, self.rank_constant, self.max_file_bytes = name, tuple(weights), rank_constant, max_file_bytes
        self.path = Path(path).expanduser() if path is not None else default_path(name)
        self.path.mkdir(parents=True, exist_ok=True)
        embedder = embedder if embedder is not None else LocalEmbedder()
        if not isinstance(embedder, Embedder):
            raise ValueError("embedder must have .name, .dim and .embed(texts)")
        self.embedder = CachedEmbedder(embedder, self.path / "embeddings.sqlite")
        tokenizer = getattr(embedder, "tokenizer", None) or _default_tokenizer()
        self.splitter = Splitter(tokenizer, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
        self._client = open_client(self.path / "chroma", url)
        self._collection_name = f"kb_{name}"
        self.collection = self._client.get_or_create_collection(
            self._collection_name, embedding_function=embedding_function(embedder),
            configuration={"hnsw": {"space": "cosine"}}, metadata={"embedder": embedder.name, "revision": 0})
        built_with = (self.collection.metadata or {}).get("embedder")
        if built_with != embedder.name:
            raise ValueError(f"knowledge base {name!r} holds vectors of {built_with!r}, not of {embedder.name!r}: "
                             f"open it with the same embedder, or delete it and ingest again")
        self._bm25: tuple[int, BM25Index, dict] | None = None  # (revision, index, corpus)
        self._bm25_lock = threading.Lock()

    # --- ingestion --------------------------------------------------------------------------

    def ingest(self, paths: str | Path | Iterable[str | Path], *, patterns: Sequence[str] = ("**/*",)) -> IngestStats:
        """Index files and directories (walked with the glob `patterns`). Unchanged files are
        skipped unread, a changed file's chunks are reconciled (only new text is embedded), files
        gone from a given directory lose their chunks; a file that cannot be read is reported in
        `errors` and keeps what it had."""
        started, embedded_before = time.perf_counter(), self.embedder.embedded
        stats = IngestStats()
        indexed = self._sources()
        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        seen = set()
        for item in iter_files(paths, patterns):
            if isinstance(item, LoadError):
                stats.errors.append(item)
                continue
            source = str(item)
            seen.add(source)
            try:
                self._ingest_file(item, indexed.get(source, {}), stats)
            except LoadError as exc:
                stats.errors.append(exc)
                stats.chunks += len(indexed.get(source, {}))
        for root in (Path(p).expanduser().resolve() for p in paths):
            if root.is_dir():
                for source, chunks in indexed.items():
                    if source not in seen and Path(source).is_relative_to(root) and not Path(source).exists():
                        self.collection.delete(ids=list(chunks))
                        stats.removed += len(chunks)
        if stats.added or stats.updated or stats.removed:
            self._bump_revision()
        stats.embedded = self.embedder.embedded - embedded_before
        stats.seconds = time.perf_counter() - started
        return stats

    def add_documents(self, documents: Iterable[Document]) -> IngestStats:
        """Index documents loaded elsewhere (your own, or a LangChain / LlamaIndex loader's output
        through `agentforge.integrations`). Documents are grouped by `source`, and each source is
        reconciled to exactly its documents' chunks as a file is: adding the same documents again
        embeds nothing, and a source given with new text loses the chunks it no longer has."""
        started, embedded_before = time.perf_counter(), self.embedder.embedded
        groups: dict[str, list[Document]] = {}
        for doc in documents:
            if not isinstance(doc, Document) or not isinstance(doc.text, str) or not isinstance(doc.source, str) \
                    or not doc.source or not isinstance(doc.metadata, dict):
                raise ValueError(f"add_documents takes agentforge.rag.Document objects with text, a non-empty source "
                                 f"and a metadata dict; got {doc!r:.200}")
            groups.setdefault(doc.source, []).append(doc)
        stats, indexed = IngestStats(), self._sources()
        for source, docs in groups.items():
            digest = content_hash("\0".join(f"{d.markdown}\0{d.text}\0{sorted(d.metadata.items())}" for d in docs))
            current = indexed.get(source, {})
            if not self._unchanged(current, digest, stats):
                self._index(docs, digest, current, stats)
        if stats.added or stats.updated or stats.removed:
            self._bump_revision()
        stats.embedded = self.embedder.embedded - embedded_before
        stats.seconds = time.perf_counter() - started
        return stats

    def _ingest_file(self, path: Path, current: dict[str, dict], stats: IngestStats) -> None:
        check_file(path, self.max_file_bytes)
        file_hash = _file_hash(path)
        if not self._unchanged(current, file_hash, stats):
            self._index(load_file(path, max_bytes=self.max_file_bytes), file_hash, current, stats)

    @staticmethod
    def _unchanged(current: dict[str, dict], file_hash: str, stats: IngestStats) -> bool:
        """Whether a source's indexed chunks are all from this version of it (then counted as skipped)."""
        if not current or not all(m.get("file_hash") == file_hash and m.get("n") == len(current) for m in current.values()):
            return False
        stats.documents += next(iter(current.values())).get("docs", 1)
        stats.skipped += len(current)
        stats.chunks += len(current)
        return True

    def _index(self, docs: list[Document], file_hash: str, current: dict[str, dict], stats: IngestStats) -> None:
        """Reconcile one source's chunks to those of `docs`: embed new ones, update changed metadata, drop gone ones."""
        chunks = [chunk for doc in docs for chunk in self.splitter.split(doc)]
        ids, metadatas, occurrences = [], [], {}
        for ordinal, chunk in enumerate(chunks):
            key = chunk.index_text
            occurrences[key] = occurrences.get(key, -1) + 1
            ids.append(hashlib.sha256(f"{chunk.source}\0{occurrences[key]}\0{key}".encode()).hexdigest()[:32])
            metadatas.append(_metadata(chunk, ordinal, len(chunks), len(docs), file_hash))
        new = [i for i, chunk_id in enumerate(ids) if chunk_id not in current]
        changed = [i for i, chunk_id in enumerate(ids) if chunk_id in current and current[chunk_id] != metadatas[i]]
        gone = sorted(set(current) - set(ids))
        batch = self._client.get_max_batch_size()
        for start in range(0, len(new), batch):
            part = new[start:start + batch]
            vectors = self.embedder.embed([chunks[i].index_text for i in part])
            self.collection.add(ids=[ids[i] for i in part], embeddings=vectors, documents=[chunks[i].text for i in part],
                                metadatas=[metadatas[i] for i in part])
        for start in range(0, len(changed), batch):
            part = changed[start:start + batch]
            self.collection.update(ids=[ids[i] for i in part], metadatas=[metadatas[i] for i in part])
        if gone:
            self.collection.delete(ids=gone)
        stats.documents += len(docs)
        stats.added += len(new)
        stats.updated += len(changed)
        stats.removed += len(gone)
        stats.skipped += len(ids) - len(new) - len(changed)
        stats.chunks += len(ids)

    def delete(self, source: str | Path) -> int:
        """Remove every chunk of `source` (a file path, or a source given to `add_documents`); the number removed."""
        ids = self.collection.get(where={"source": str(source)}, include=[])["ids"]
        if not ids and not (isinstance(source, str) and "://" in source):
            ids = self.collection.get(where={"source": str(Path(source).expanduser().resolve())}, include=[])["ids"]
        if ids:
            self.collection.delete(ids=ids)
            self._bump_revision()
        return len(ids)

    def sources(self) -> dict[str, int]:
        """Each indexed file and its number of chunks."""
        return {source: len(chunks) for source, chunks in sorted(self._sources().items())}

    def count(self) -> int:
        return self.collection.count()

    def _sources(self) -> dict[str, dict[str, dict]]:
        found: dict[str, dict[str, dict]] = {}
        got = self.collection.get(include=["metadatas"])
        for chunk_id, meta in zip(got["ids"], got["metadatas"]):
            found.setdefault(meta["source"], {})[chunk_id] = meta
        return found

    def _bump_revision(self) -> None:
        meta = dict(self._client.get_collection(self._collection_name).metadata or {})
        meta["revision"] = int(meta.get("revision", 0)) + 1
        self.collection.modify(metadata=meta)

    # --- search -----------------------------------------------------------------------------

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid", where: dict | None = None,
               diversity: float | None = None, reranker: Reranker | None = None) -> list[Hit]:
        """The `k` best chunks for `query`: `mode` "hybrid" (dense and BM25 fused by reciprocal
        rank), "dense" or "bm25"; `where` a Chroma metadata filter ({"source": ...},
        {"format": "pdf"}, {"$and": [...]}); `diversity` in [0, 1] re-picks by MMR; `reranker`
        (a `Reranker`) reorders the candidates before the cut."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        if not isinstance(k, int) or not 1 <= k <= 1000:
            raise ValueError("k must be an integer in [1, 1000]")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if where is not None and not isinstance(where, dict):
            raise ValueError("where must be a Chroma filter dict")
        if reranker is not None and not isinstance(reranker, Reranker):
            raise ValueError("reranker must have .rerank(query, hits)")
        pool = k if diversity is None and reranker is None else max(3 * k, 20)
        candidates = max(pool, 30) if mode == "hybrid" else pool
        rankings, query_vector, corpus = [], None, None
        if mode != "dense":
            bm25, corpus = self._fresh_bm25()
        if mode != "bm25":
            query_vector = self.embedder.embedder.embed([query])[0]
            rankings.append(self._dense(query_vector, candidates, where, corpus))
        if mode != "dense":
            allowed = set(self.collection.get(where=where, include=[])["ids"]) if where else None
            rankings.append([_hit(i, *corpus[i], score) for i, score in bm25.search(query, candidates, allowed)])
        hits = rankings[0] if len(rankings) == 1 else reciprocal_rank_fusion(
            rankings, weights=self.weights, rank_constant=self.rank_constant)
        hits = hits[:pool]
        if reranker is not None:
            hits = reranker.rerank(query, hits)
        if diversity is not None and hits:
            vectors = self._vectors([h.id for h in hits])
            if query_vector is None:
                query_vector = self.embedder.embedder.embed([query])[0]
            hits = maximal_marginal_relevance(query_vector, hits, vectors, k, diversity)
        return hits[:k]

    def _dense(self, vector: np.ndarray, n: int, where: dict | None, corpus: dict | None) -> list[Hit]:
        """Nearest chunks; with the BM25 `corpus` at hand (hybrid search) their text and metadata
        come from it, which spares Chroma fetching them."""
        n = min(n, self.collection.count() if corpus is None else len(corpus))
        if n == 0:
            return []
        include = ["documents", "metadatas", "distances"] if corpus is None else ["distances"]
        got = self.collection.query(query_embeddings=[vector], n_results=n, where=where, include=include)
        if corpus is None:
            return [_hit(i, text, meta, 1.0 - dist) for i, text, meta, dist in
                    zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])]
        return [_hit(i, *corpus[i], 1.0 - dist) for i, dist in zip(got["ids"][0], got["distances"][0]) if i in corpus]

    def _fresh_bm25(self) -> tuple[BM25Index, dict[str, tuple[str, dict]]]:
        """The BM25 index and its corpus, rebuilt when the collection changed (here or in another
        process); one rebuild at a time, and each search keeps the pair it started with."""
        revision = int((self._client.get_collection(self._collection_name).metadata or {}).get("revision", 0))
        with self._bm25_lock:
            if self._bm25 is None or revision != self._bm25[0]:
                got = self.collection.get(include=["documents", "metadatas"])
                corpus = {i: (text, meta) for i, text, meta in zip(got["ids"], got["documents"], got["metadatas"])}
                self._bm25 = (revision, BM25Index(list(corpus), [_index_text(*v) for v in corpus.values()]), corpus)
            return self._bm25[1], self._bm25[2]

    def _vectors(self, ids: list[str]) -> np.ndarray:
        got = self.collection.get(ids=ids, include=["embeddings"])
        by_id = dict(zip(got["ids"], got["embeddings"]))
        return np.asarray([by_id[i] for i in ids], dtype=np.float32)

    # --- adapters ---------------------------------------------------------------------------

    def as_retriever(self, *, k: int = 5, mode: str = "hybrid", where: dict | None = None, **options):
        """A `Retriever` (`.retrieve(query)`) with these search settings."""
        from ._adapters import KnowledgeBaseRetriever

        return KnowledgeBaseRetriever(self, k=k, mode=mode, where=where, options=options)

    def as_tool(self, *, name: str | None = None, description: str | None = None, k: int = 4, **options):
        """An agent `Tool` that searches this knowledge base and returns numbered, sourced passages."""
        from ._adapters import knowledge_base_tool

        return knowledge_base_tool(self, name=name, description=description, k=k, options=options)

    def close(self) -> None:
        self.embedder.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _metadata(chunk: Chunk, ordinal: int, total: int, docs: int, file_hash: str) -> dict:
    meta = {"source": chunk.source, "section": chunk.section, "start": chunk.start, "end": chunk.end,
            "ord": ordinal, "n": total, "docs": docs, "file_hash": file_hash}
    meta.update({key: chunk.metadata[key] for key in _DOC_META if isinstance(chunk.metadata.get(key), (str, int, float))})
    return meta


def _hit(chunk_id: str, text: str, meta: dict, score: float) -> Hit:
    shown = {k: v for k, v in meta.items() if k not in ("source", "file_hash", "n", "docs")}
    return Hit(chunk_id, text, meta["source"], float(score), shown)


def _index_text(text: str, meta: dict) -> str:
    return f"{meta['section']}\n{text}" if meta.get("section") else text


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _default_tokenizer():
    from transformers import AutoTokenizer

    from .embeddings import default_model_path

    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    tokenizer.model_max_length = 1 << 30  # only counts tokens: no warning for long sections
    return tokenizer
