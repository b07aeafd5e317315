"""Paged attention in plain PyTorch, with the per-step metadata the model runner sets.

The KV cache of one layer is `[num_blocks, block_size, num_kv_heads, head_dim]`. Each step writes
the new keys/values at their slots, then reads every sequence's context back block by block:
decodes (one query token each) in a few padded batches of similar context length, prompt chunks
one by one. GQA/MQA is native (a decode folds the query heads of a KV group into the query-length
axis; prefills use SDPA's `enable_gqa`); sliding-window layers mask keys older than their window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(slots=True)
class DecodeGroup:
    """Decodes of similar context length, batched together (padded to the longest of them)."""

    start: int  # offset of the group's tokens in the step's flat token array
    block_tables: torch.Tensor  # [n, max_blocks], padded with block 0
    context_lens: torch.Tensor  # [n]
    _masks: dict = field(default_factory=dict)

    def mask(self, window: int | None, block_size: int) -> torch.Tensor:
        """[n, 1, 1, max_len] True where the key is visible to the query."""
        if window not in self._masks:
            pos = torch.arange(self.block_tables.shape[1] * block_size)
            lens = self.context_lens[:, None]
            visible = pos < lens
            if window is not None:
                visible &= pos > lens - 1 - window
            self._masks[window] = visible[:, None, None, :]
        return self._masks[window]


@dataclass(slots=True)
class Prefill:
    """One sequence's chunk of prompt tokens."""

    start: int
    num_tokens: int
    context_len: int  # tokens in the cache once the chunk is written (cached + chunk)
    block_table: torch.Tensor
    _masks: dict = field(default_factory=dict)

    def mask(self, window: int | None) -> torch.Tensor | None:
        """[num_tokens, context_len] causal mask; None means plain causal (no cached context)."""
        if window is None and self.context_len == self.num_tokens:
            return None
        if window not in self._masks:
            q_pos = torch.arange(self.context_len - self.num_tokens, self.context_len)[:, None]
            k_pos = torch.arange(self.context_len)[None, :]
            visible = k_pos <= q_pos
            if window is not None:
                visible &= k_pos > q_pos - window
            self._masks[window] = visible
        return self._masks[window]


@dataclass(slots=True)
class AttentionContext:
    """What attention needs to know about the current step; decodes come first in the token array."""

    slot_mapping: torch.Tensor
    decodes: list[DecodeGroup] = field(default_factory=list)
    prefills: list[Prefill] = field(default_factory=list)


_context: AttentionContext | None = None


def set_context(context: AttentionContext | None) -> None:
    global _context
    _context = context


def get_context() -> AttentionContext:
    assert _context is not None, "attention called outside a model-runner step"
    return _context


class PagedAttention(nn.Module):
    def __init__(
        self, num_heads: int, num_kv_heads: int, head_dim: int, scale: float, sliding_window: int | None = None
    ) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.scale = scale
        self.sliding_window = sliding_window
        self.k_cache = self.v_cache = torch.empty(0)  # bound by the model runner

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: [T, num_heads, head_dim], k/v: [T, num_kv_heads, head_dim] -> [T, num_heads, head_dim]."""
        ctx = get_context()
        self.k_cache.view(-1, self.num_kv_heads, self.head_dim).index_copy_(0, ctx.slot_mapping, k)
        self.v_cache.view(-1, self.num_kv_heads, self.head_dim).index_copy_(0, ctx.slot_mapping, v)
        out = torch.empty_like(q)
        for group in ctx.decodes:
            n = group.block_tables.shape[0]
            out[group.start : group.start + n] = self._decode(q[group.start : group.start + n], group)
        for p in ctx.prefills:
            keys = self._gather(self.k_cache, p.block_table)[: p.context_len]  # [L, kvh, d]
            values = self._gather(self.v_cache, p.block_table)[: p.context_len]
            query = q[p.start : p.start + p.num_tokens].transpose(0, 1)[None]  # [1, H, n, d]
            mask = p.mask(self.sliding_window)
            o = F.scaled_dot_product_attention(
                query,
                keys.transpose(0, 1)[None],
                values.transpose(0, 1)[None],
                attn_mask=mask,
                is_causal=mask is None,
                scale=self.scale,
                enable_gqa=True,
            )
            out[p.start : p.start + p.num_tokens] = o[0].transpose(0, 1)
        return out

    def _gather(self, cache: torch.Tensor, block_table: torch.Tensor) -> torch.Tensor:
        """The blocks of a table (any shape), as [..., tokens, kv_heads, head_dim]."""
        flat = cache.view(cache.shape[0], -1).index_select(0, block_table.flatten())  # whole blocks at once
        return flat.view(*block_table.shape[:-1], -1, self.num_kv_heads, self.head_dim)

    def _decode(self, q: torch.Tensor, group: DecodeGroup) -> torch.Tensor:
        n = q.shape[0]
        keys = self._gather(self.k_cache, group.block_tables).transpose(1, 2)  # [n, kvh, max_len, d]
        values = self._gather(self.v_cache, group.block_tables).transpose(1, 2)
        query = q.view(n, self.num_kv_heads, self.num_heads // self.num_kv_heads, self.head_dim)
        mask = group.mask(self.sliding_window, self.k_cache.shape[1])
        o = F.scaled_dot_product_attention(query, keys, values, attn_mask=mask, scale=self.scale)
        return o.reshape(n, self.num_heads, self.head_dim)
