"""Paged attention in plain PyTorch, with the per-step metadata the model runner sets.

The KV cache of one layer is `[num_blocks, block_size, num_kv_heads, head_dim]`. Each step writes
the new keys/values at their slots, then reads every sequence's context back block by block:
decodes (one query token each) in one padded batch, prompt chunks one by one. GQA/MQA is native
(a decode reshapes the query heads of a KV group into the query-length axis; prefills use SDPA's
`enable_gqa`); sliding-window layers mask keys older than their window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(slots=True)
class Prefill:
    start: int  # offset of the chunk in the step's flat token array
    num_tokens: int
    context_len: int  # tokens in the cache once the chunk is written (cached + chunk)
    block_table: torch.Tensor


@dataclass(slots=True)
class AttentionContext:
    """What attention needs to know about the current step; decodes come first in the token array."""

    slot_mapping: torch.Tensor
    num_decodes: int = 0
    decode_block_tables: torch.Tensor | None = None  # [num_decodes, max_blocks], padded
    decode_context_lens: torch.Tensor | None = None  # [num_decodes]
    prefills: list[Prefill] = field(default_factory=list)
    _masks: dict = field(default_factory=dict)

    def decode_mask(self, window: int | None, max_len: int) -> torch.Tensor:
        """[num_decodes, 1, 1, max_len] True where the key is visible to the decode query."""
        key = ("decode", window)
        if key not in self._masks:
            pos = torch.arange(max_len)
            lens = self.decode_context_lens[:, None]
            mask = pos < lens
            if window is not None:
                mask &= pos > lens - 1 - window
            self._masks[key] = mask[:, None, None, :]
        return self._masks[key]

    def prefill_mask(self, i: int, window: int | None) -> torch.Tensor | None:
        """[num_tokens, context_len] causal mask of prefill chunk i; None means plain causal."""
        p = self.prefills[i]
        if window is None and p.context_len == p.num_tokens:
            return None
        key = ("prefill", i, window)
        if key not in self._masks:
            q_pos = torch.arange(p.context_len - p.num_tokens, p.context_len)[:, None]
            k_pos = torch.arange(p.context_len)[None, :]
            mask = k_pos <= q_pos
            if window is not None:
                mask &= k_pos > q_pos - window
            self._masks[key] = mask
        return self._masks[key]


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
        block_size = self.k_cache.shape[1]
        flat_k = self.k_cache.view(-1, self.num_kv_heads, self.head_dim)
        flat_v = self.v_cache.view(-1, self.num_kv_heads, self.head_dim)
        flat_k.index_copy_(0, ctx.slot_mapping, k)
        flat_v.index_copy_(0, ctx.slot_mapping, v)
        out = torch.empty_like(q)
        if ctx.num_decodes:
            out[: ctx.num_decodes] = self._decode(q[: ctx.num_decodes], ctx, block_size)
        for i, p in enumerate(ctx.prefills):
            keys = self.k_cache[p.block_table].flatten(0, 1)[: p.context_len]  # [L, kvh, d]
            values = self.v_cache[p.block_table].flatten(0, 1)[: p.context_len]
            query = q[p.start : p.start + p.num_tokens].transpose(0, 1)[None]  # [1, H, n, d]
            mask = ctx.prefill_mask(i, self.sliding_window)
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

    def _decode(self, q: torch.Tensor, ctx: AttentionContext, block_size: int) -> torch.Tensor:
        b = q.shape[0]
        tables = ctx.decode_block_tables
        max_len = tables.shape[1] * block_size
        # [B, blocks, block_size, kvh, d] -> [B, kvh, max_len, d]
        keys = self.k_cache[tables].view(b, max_len, self.num_kv_heads, self.head_dim).transpose(1, 2)
        values = self.v_cache[tables].view(b, max_len, self.num_kv_heads, self.head_dim).transpose(1, 2)
        group = self.num_heads // self.num_kv_heads
        query = q.view(b, self.num_kv_heads, group, self.head_dim)  # the heads of a group share K/V
        mask = ctx.decode_mask(self.sliding_window, max_len)
        o = F.scaled_dot_product_attention(query, keys, values, attn_mask=mask, scale=self.scale)
        return o.reshape(b, self.num_heads, self.head_dim)
