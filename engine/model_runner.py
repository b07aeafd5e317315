"""Runs one scheduled step through the model: flat inputs, attention metadata, logits of sampled rows.

Stateless per step apart from the KV cache it owns. Sequences with a few tokens in the step
(decodes, decodes verifying draft tokens) are laid out first so attention takes them in one call;
prompt chunks follow, each with its own causal mask.
"""

from __future__ import annotations

import math
import mmap

import torch
from torch import nn

from .attention import AttentionContext, PagedAttention, PagedBatch, Prefill, set_context
from .images import StepImages
from .lora import LoRABatch, LoRAHooks
from .scheduler import ScheduledBatch
from .sequence import logit_rows

PAGED_MAX_QUERY = 16  # sequences with at most this many tokens in a step attend through the paged kernel
_MADV_POPULATE_WRITE = 23  # Linux's value; Python's mmap names it from 3.14


def lazy_zeros(shape: tuple[int, ...], dtype: torch.dtype, populate: bool = False) -> torch.Tensor:
    """Zeros whose memory the OS maps on first write (an anonymous mapping's fresh zero pages): a cache of
    gigabytes costs neither start-up time nor resident memory until its blocks are written.
    (`torch.zeros` writes every byte: 0.4 s and 2 GiB resident for the default cache, used or not.)
    Where the OS offers them, in 2 MiB pages (transparent huge pages on request): one fault per 2 MiB
    written instead of 512, and fewer TLB misses in attention, whose blocks lie anywhere in the cache.
    `populate`: every page mapped now instead (`MADV_POPULATE_WRITE`, or one write per page where the
    kernel predates it), the faults paid at start-up."""
    nbytes = math.prod(shape) * dtype.itemsize
    raw = mmap.mmap(-1, max(nbytes, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # page-aligned
    if hasattr(mmap, "MADV_HUGEPAGE"):
        raw.madvise(mmap.MADV_HUGEPAGE)
    tensor = torch.frombuffer(raw, dtype=torch.uint8)[:nbytes]  # keeps `raw`
    if populate:
        try:
            raw.madvise(getattr(mmap, "MADV_POPULATE_WRITE", _MADV_POPULATE_WRITE))
        except OSError:  # Linux before 5.14
            tensor[:: mmap.PAGESIZE] = 0
    return tensor.view(dtype).view(shape)


def attention_layers(model: nn.Module) -> list[PagedAttention]:
    return [m for m in model.modules() if isinstance(m, PagedAttention)]


def kv_bytes_per_token(model: nn.Module, cache_dtype: torch.dtype) -> int:
    """Cache bytes one token takes across the model's layers: keys and values (one tensor where keys
    serve as values) in `cache_dtype`, int8 with a float32 scale per head."""
    size = cache_dtype.itemsize
    scale = 4 if cache_dtype == torch.int8 else 0
    return sum((1 if a.shared_kv else 2) * a.num_kv_heads * (a.head_dim * size + scale) for a in attention_layers(model))


class ModelRunner:
    def __init__(self, model: nn.Module, num_blocks: int, block_size: int, cache_dtype: torch.dtype,
                 populate: bool = False) -> None:
        self.model = model
        self.block_size = block_size
        self.lora = LoRAHooks(model)
        kv_int8 = cache_dtype == torch.int8
        for layer in attention_layers(model):
            shape = (num_blocks, block_size, layer.num_kv_heads, layer.head_dim)
            layer.k_cache = lazy_zeros(shape, cache_dtype, populate)
            layer.v_cache = layer.k_cache if layer.shared_kv else lazy_zeros(shape, cache_dtype, populate)
            if kv_int8:  # one scale per token and head
                layer.k_scale = lazy_zeros((*shape[:-1], 1), torch.float32, populate)
                layer.v_scale = layer.k_scale if layer.shared_kv else lazy_zeros((*shape[:-1], 1), torch.float32, populate)

    @torch.inference_mode()
    def run(self, batch: ScheduledBatch) -> torch.Tensor:
        """Logits of the rows the step needs (`sequence.logit_rows`), in batch order: one for a
        sequence whose last token was reached, 1 + len(draft) for one verifying draft tokens, a
        probe's scored positions."""
        input_ids, positions, context, sample_rows, starts = self.prepare(batch)
        images = self._images(batch, starts, positions)
        self.lora.batch = self._lora_rows(batch, starts) if self.lora.adapters else None
        context.adapters = self.lora.batch is not None
        context.native_layers = not context.prefills and not context.adapters and images is None and input_ids.is_cpu
        set_context(context)
        try:
            hidden = self.model(input_ids, positions, images) if images else self.model(input_ids, positions)
        finally:
            set_context(None)
            self.lora.batch = None
        return self.model.compute_logits(hidden[sample_rows]).float()

    def prepare(self, batch: ScheduledBatch):
        bs = self.block_size
        # sequences with a few query tokens first (attended together, straight from the cache)
        order = sorted(range(len(batch.seqs)), key=lambda i: batch.num_tokens[i] > PAGED_MAX_QUERY)
        ids: list[int] = []
        pos: list[int] = []
        starts = [0] * len(batch.seqs)
        tables: list[list[int]] = []  # each sequence's blocks up to its last token this step, in `order`
        for i in order:
            seq, n = batch.seqs[i], batch.num_tokens[i]
            first = seq.num_computed_tokens
            starts[i] = len(ids)
            tokens = seq.token_ids + seq.draft_token_ids if seq.draft_token_ids else seq.token_ids
            ids.extend(tokens[first : first + n])
            pos.extend(range(first, first + n))
            tables.append(seq.block_table[: -(-(first + n) // bs)])
        # one padded block table for the step: slots for every token at once, the paged batch's rows
        width = max(map(len, tables))
        padded = torch.tensor([t + [0] * (width - len(t)) for t in tables], dtype=torch.int32)
        counts = [batch.num_tokens[i] for i in order]
        positions = torch.tensor(pos)
        row_of_token = torch.repeat_interleave(torch.arange(len(order)), torch.tensor(counts))
        slots = padded[row_of_token, positions // bs].long() * bs + positions % bs
        num_paged = sum(n <= PAGED_MAX_QUERY for n in counts)
        paged = None
        if num_paged:
            query_starts = torch.tensor([0, *counts[:num_paged]], dtype=torch.int32).cumsum(0, dtype=torch.int32)
            lens = [batch.seqs[i].num_computed_tokens + batch.num_tokens[i] for i in order[:num_paged]]
            paged = PagedBatch(int(query_starts[-1]), query_starts, padded[:num_paged],
                               torch.tensor(lens, dtype=torch.int32))
        prefills = [
            Prefill(starts[i], batch.num_tokens[i], batch.seqs[i].num_computed_tokens + batch.num_tokens[i],
                    padded[row, : len(tables[row])])
            for row, i in enumerate(order[num_paged:], num_paged)
        ]
        context = AttentionContext(slots, paged, prefills)
        sample_rows = []
        for i, (seq, n) in enumerate(zip(batch.seqs, batch.num_tokens)):
            first = seq.num_computed_tokens
            sample_rows.extend(starts[i] + p - first for p in logit_rows(seq, first, n))
        return torch.tensor(ids), positions, context, torch.tensor(sample_rows, dtype=torch.long), starts

    def _images(self, batch: ScheduledBatch, starts: list[int], positions: torch.Tensor) -> StepImages | None:
        """The step's image token rows and their embeddings (a prompt's images are embedded when a
        chunk first needs them, and let go once its last image token is through) and, for M-RoPE
        models, every row's rope positions."""
        rows, embeds, mrope = [], [], False
        for seq, n, start in zip(batch.seqs, batch.num_tokens, starts):
            images, first = seq.images, seq.num_computed_tokens
            if images is None:
                continue
            mrope |= images.rope_positions is not None
            lo, hi = images.rows_in(first, first + n)
            if lo == hi:
                continue
            if images.embeds is None:
                images.embeds = self.model.embed_images(**images.model_inputs)
            rows.extend(start + p - first for p in images.positions[lo:hi])
            embeds.append(images.embeds[:, lo:hi])
            if hi == len(images.positions):
                images.embeds = None
        if not rows and not mrope:
            return None
        hidden = self.model.config.hidden_size
        step = StepImages(torch.tensor(rows, dtype=torch.long), torch.cat(embeds, 1) if embeds else torch.empty(1, 0, hidden))
        if mrope:
            step.rope_positions = self._rope_positions(batch, starts, positions)
        return step

    @staticmethod
    def _rope_positions(batch: ScheduledBatch, starts: list[int], positions: torch.Tensor) -> torch.Tensor:
        """(3, N) M-RoPE positions: a prompt's from its table, later tokens' shifted by its delta,
        text-only sequences' their positions thrice."""
        rope = positions.expand(3, -1).clone()
        for seq, n, start in zip(batch.seqs, batch.num_tokens, starts):
            images = seq.images
            if images is None or images.rope_positions is None:
                continue
            first, prompt = seq.num_computed_tokens, images.rope_positions.shape[1]
            rope[:, start : start + n] += images.rope_delta
            if first < prompt:
                end = min(first + n, prompt)
                rope[:, start : start + end - first] = images.rope_positions[:, first:end]
        return rope

    @staticmethod
    def _lora_rows(batch: ScheduledBatch, starts: list[int]) -> LoRABatch | None:
        """The flat token rows of each adapter in the step (a sequence's tokens are contiguous)."""
        rows: dict[int, tuple] = {}
        for seq, n, start in zip(batch.seqs, batch.num_tokens, starts):
            if seq.lora is not None:
                rows.setdefault(seq.lora.uid, (seq.lora, []))[1].extend(range(start, start + n))
        return LoRABatch([(a, torch.tensor(r)) for a, r in rows.values()]) if rows else None
