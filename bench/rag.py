"""RAG speed against LlamaIndex, in one run, on the fixture corpus (`_rag_corpus.py`, built
COPIES times with different seeds so ingestion has something to chew on):

- ingestion throughput (chunks/s, from files to an indexed Chroma collection): ours (load, split,
  embed, Chroma + BM25) against LlamaIndex (`SentenceSplitter` + `VectorStoreIndex` on
  `ChromaVectorStore`, same documents, same model as a plain float32 `transformers` embedding);
- query latency p50/p99 over the 160 questions: ours hybrid and dense, LlamaIndex's retriever;
- embedding speed of our default path (bfloat16 where the CPU has it, length-sorted batches)
  against plain float32 `transformers` mean pooling (batches of 32 in corpus order), and the
  cosine similarity of our vectors to the float32 ones (and int8 dynamic quantization's, which we
  do not use: it loses too much).

    python bench/rag.py
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _rag_corpus import build_corpus

from agentforge.rag import KnowledgeBase, LocalEmbedder, load_file
from agentforge.rag.embeddings import cpu_has_native_bf16, default_model_path

COPIES = 3


class PlainEmbedding:
    """The textbook float32 recipe (the model card's): tokenizer(padding, truncation), mean pooling."""

    def __init__(self, batch_size: int = 32) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(default_model_path())
        self.model = AutoModel.from_pretrained(default_model_path()).eval()
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(texts[start:start + self.batch_size], padding=True, truncation=True,
                                     max_length=256, return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out)


def llama_index_embedding(plain: PlainEmbedding):
    from llama_index.core.embeddings import BaseEmbedding

    class PlainHF(BaseEmbedding):
        def _get_text_embeddings(self, texts):
            return plain.embed(texts).tolist()

        def _get_text_embedding(self, text):
            return self._get_text_embeddings([text])[0]

        def _get_query_embedding(self, query):
            return self._get_text_embedding(query)

        async def _aget_query_embedding(self, query):
            return self._get_query_embedding(query)

    return PlainHF(model_name="all-MiniLM-L6-v2", embed_batch_size=32)


def latency(search, questions) -> tuple[float, float]:
    """p50 and p99 of a timed pass after an untimed one (first calls of each shape set kernels up)."""
    for q in questions:
        search(q.question)
    times = []
    for q in questions:
        start = time.perf_counter()
        search(q.question)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.99 * len(times)))]


def main() -> None:
    warnings.filterwarnings("ignore")
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    corpus = work / "corpus"
    questions = build_corpus(corpus / "0")
    for n in range(1, COPIES):  # other companies, not copies: the embedding cache must not help
        build_corpus(corpus / str(n), seed=7 + n)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    print(f"CPU: {cpu} (native bf16: {cpu_has_native_bf16()}), torch threads {torch.get_num_threads()}")

    embedder, plain = LocalEmbedder(), PlainEmbedding()
    # ours: files -> chunks in Chroma (+ BM25 at the first query)
    kb = KnowledgeBase("bench", path=work / "ours", embedder=embedder)
    start = time.perf_counter()
    stats = kb.ingest(corpus)
    ours_s = time.perf_counter() - start
    ours_hybrid = latency(lambda q: kb.search(q, k=5), questions)
    ours_dense = latency(lambda q: kb.search(q, k=5, mode="dense"), questions)

    # LlamaIndex: the same files through our loaders (it has no PDF/DOCX reader in core), its splitter,
    # the plain float32 embedding, a Chroma collection
    import chromadb
    from chromadb.config import Settings
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    start = time.perf_counter()
    docs = [Document(text=d.text, metadata={"source": d.source}) for p in sorted(corpus.rglob("*.*"))
            for d in load_file(p)]
    client = chromadb.PersistentClient(path=str(work / "llama"), settings=Settings(anonymized_telemetry=False))
    store = ChromaVectorStore(chroma_collection=client.get_or_create_collection("bench"))
    index = VectorStoreIndex.from_documents(
        docs, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=llama_index_embedding(plain),
        transformations=[SentenceSplitter(chunk_size=200, chunk_overlap=30)])
    llama_s = time.perf_counter() - start
    llama_chunks = client.get_collection("bench").count()
    retriever = index.as_retriever(similarity_top_k=5)
    llama_latency = latency(lambda q: retriever.retrieve(q), questions)

    # embedding speed on the chunk texts
    texts = kb.collection.get(include=["documents"])["documents"]
    start = time.perf_counter()
    reference = plain.embed(texts)
    plain_s = time.perf_counter() - start
    start = time.perf_counter()
    fast = embedder.embed(texts)
    fast_s = time.perf_counter() - start
    cosine = (reference * fast).sum(axis=1)
    # int8 (dynamic, per-channel weights): measured here because it does not keep quality
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    int8 = LocalEmbedder(dtype="float32")
    int8.model = quantize_dynamic(int8.model, {torch.nn.Linear: per_channel_dynamic_qconfig})
    start = time.perf_counter()
    quantized = int8.embed(texts)
    int8_s = time.perf_counter() - start
    int8_cosine = (reference * quantized).sum(axis=1)

    print(f"\ningestion ({COPIES} x 40 files, {COPIES} x 160 distinct companies' sections)")
    print(f"  ours        {stats.chunks:5d} chunks in {ours_s:6.1f} s = {stats.chunks / ours_s:6.1f} chunks/s")
    print(f"  LlamaIndex  {llama_chunks:5d} chunks in {llama_s:6.1f} s = {llama_chunks / llama_s:6.1f} chunks/s")
    print(f"  ratio (ours/LlamaIndex, chunks/s): {stats.chunks / ours_s / (llama_chunks / llama_s):.2f}x")
    print("\nquery latency, 160 questions, k=5 (p50 / p99 ms)")
    print(f"  ours hybrid       {ours_hybrid[0]:6.1f} / {ours_hybrid[1]:6.1f}")
    print(f"  ours dense        {ours_dense[0]:6.1f} / {ours_dense[1]:6.1f}")
    print(f"  LlamaIndex dense  {llama_latency[0]:6.1f} / {llama_latency[1]:6.1f}")
    print(f"\nembedding {len(texts)} chunks: plain float32 {plain_s:.2f} s, ours ({embedder.dtype}, sorted batches) "
          f"{fast_s:.2f} s = {plain_s / fast_s:.2f}x; cosine to float32 min {cosine.min():.4f}, mean {cosine.mean():.4f}")
    print(f"  (int8 dynamic quantization, sorted batches: {int8_s:.2f} s = {plain_s / int8_s:.2f}x; cosine min "
          f"{int8_cosine.min():.4f}, mean {int8_cosine.mean():.4f}: not used)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
