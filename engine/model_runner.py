"""Runs one scheduled step through the model: flat inputs, attention metadata, logits of sampled rows.

Stateless per step apart from the KV cache it owns. Decodes (one token) are laid out first so
attention can batch them; prompt chunks follow, each with its own causal mask — and so do decodes
with draft tokens, which are a short chunk whose every position is sampled.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import AttentionContext, DecodeGroup, PagedAttention, Prefill, set_context
from .lora import LoRABatch, LoRAHooks
from .scheduler import ScheduledBatch
from .sequence import logit_rows

DECODE_GROUPS = 8  # padded decode batches per step
MIN_DECODE_GROUP = 4  # fewer decodes than this are not worth another attention call


def attention_layers(model: nn.Module) -> list[PagedAttention]:
    return [m for m in model.modules() if isinstance(m, PagedAttention)]


def kv_bytes_per_token(model: nn.Module, dtype: torch.dtype) -> int:
    size = torch.tensor([], dtype=dtype).element_size()
    return sum(2 * a.num_kv_heads * a.head_dim * size for a in attention_layers(model))


class ModelRunner:
    def __init__(self, model: nn.Module, num_blocks: int, block_size: int, dtype: torch.dtype) -> None:
        self.model = model
        self.block_size = block_size
        self.lora = LoRAHooks(model)
        for layer in attention_layers(model):
            shape = (num_blocks, block_size, layer.num_kv_heads, layer.head_dim)
            layer.k_cache = torch.zeros(shape, dtype=dtype)
            layer.v_cache = torch.zeros(shape, dtype=dtype)

    @torch.inference_mode()
    def run(self, batch: ScheduledBatch) -> torch.Tensor:
        """Logits of the rows the step needs (`sequence.logit_rows`), in batch order: one for a
        sequence whose last token was reached, 1 + len(draft) for one verifying draft tokens, a
        probe's scored positions."""
        input_ids, positions, context, sample_rows, starts = self.prepare(batch)
        set_context(context)
        self.lora.batch = self._lora_rows(batch, starts) if self.lora.adapters else None
        try:
            hidden = self.model(input_ids, positions)
        finally:
            set_context(None)
            self.lora.batch = None
        return self.model.compute_logits(hidden[sample_rows]).float()

    def prepare(self, batch: ScheduledBatch):
        bs = self.block_size
        # decodes first, shortest context first, so similar lengths can share one padded batch
        order = sorted(
            range(len(batch.seqs)),
            key=lambda i: (batch.num_tokens[i] != 1, batch.seqs[i].num_computed_tokens),
        )
        ids: list[int] = []
        pos: list[int] = []
        slots: list[int] = []
        starts = [0] * len(batch.seqs)
        decode_tables: list[list[int]] = []
        decode_lens: list[int] = []
        prefills: list[Prefill] = []
        for i in order:
            seq, n = batch.seqs[i], batch.num_tokens[i]
            first = seq.num_computed_tokens
            starts[i] = len(ids)
            tokens = seq.token_ids + seq.draft_token_ids if seq.draft_token_ids else seq.token_ids
            ids.extend(tokens[first : first + n])
            span = range(first, first + n)
            pos.extend(span)
            table = seq.block_table
            slots.extend(table[p // bs] * bs + p % bs for p in span)
            num_blocks = -(-(first + n) // bs)
            if n == 1:
                decode_tables.append(table[:num_blocks])
                decode_lens.append(first + 1)
            else:
                prefills.append(Prefill(starts[i], n, first + n, torch.tensor(table[:num_blocks])))
        context = AttentionContext(torch.tensor(slots), self._group_decodes(decode_tables, decode_lens), prefills)
        sample_rows = []
        for i, (seq, n) in enumerate(zip(batch.seqs, batch.num_tokens)):
            first = seq.num_computed_tokens
            sample_rows.extend(starts[i] + p - first for p in logit_rows(seq, first, n))
        return torch.tensor(ids), torch.tensor(pos), context, torch.tensor(sample_rows, dtype=torch.long), starts

    @staticmethod
    def _lora_rows(batch: ScheduledBatch, starts: list[int]) -> LoRABatch | None:
        """The flat token rows of each adapter in the step (a sequence's tokens are contiguous)."""
        rows: dict[int, tuple] = {}
        for seq, n, start in zip(batch.seqs, batch.num_tokens, starts):
            if seq.lora is not None:
                rows.setdefault(seq.lora.uid, (seq.lora, []))[1].extend(range(start, start + n))
        return LoRABatch([(a, torch.tensor(r)) for a, r in rows.values()]) if rows else None

    @staticmethod
    def _group_decodes(tables: list[list[int]], lens: list[int]) -> list[DecodeGroup]:
        """Split length-sorted decodes into up to DECODE_GROUPS batches, so padding stays small."""
        size = max(MIN_DECODE_GROUP, -(-len(tables) // DECODE_GROUPS))
        groups = []
        for start in range(0, len(tables), size):
            chunk = tables[start : start + size]
            width = max(map(len, chunk))
            groups.append(
                DecodeGroup(
                    start,
                    torch.tensor([t + [0] * (width - len(t)) for t in chunk]),
                    torch.tensor(lens[start : start + size]),
                )
            )
        return groups
