"""Paged attention, with the per-step metadata the model runner sets.

The KV cache of one layer is `[num_blocks, block_size, num_kv_heads, head_dim]`. Each step writes
the new keys/values at their slots, then attends:
- sequences with a few query tokens (decodes, draft verification) all at once, straight from the
  cache through their block tables — the native kernel (`kernels/paged_attention.cpp`) when it
  could be built, else `paged_attention_reference`, which gathers the blocks into one padded batch;
- prompt chunks one by one with SDPA: on their own keys/values when nothing is cached before them,
  else on their gathered context.
GQA/MQA is native; sliding-window layers mask keys older than their window, chunked layers (Llama 4)
keys outside the query's chunk; soft-capped layers (Gemma 2) pass their scores through
cap * tanh(score / cap). An int8 cache (`kv_cache_dtype="int8"`) keeps a float32 scale per token and
head beside it; the native kernel applies the scales as it reads (a key's to its scores, a value's to
its weights), prompt chunks dequantize the blocks they gather. A 16-bit cache under float32
activations (`kv_cache_dtype="bfloat16"` or `"float16"`) holds the keys and values rounded as
written; the native kernel reads it as it is, prompt chunks widen what they gather. The kernel is a
CPU kernel: a model on a GPU takes the PyTorch path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import native_ops


@dataclass(slots=True)
class PagedBatch:
    """Sequences with a few query tokens each, first in the step's token array."""

    num_tokens: int
    query_starts: torch.Tensor  # int32 [n + 1]: sequence i's queries are rows query_starts[i]:query_starts[i + 1]
    block_tables: torch.Tensor  # int32 [n, max_blocks], padded with block 0
    context_lens: torch.Tensor  # int32 [n]: tokens in the cache once this step's are written


@dataclass(slots=True)
class Prefill:
    """One sequence's chunk of prompt tokens."""

    start: int
    num_tokens: int
    context_len: int  # tokens in the cache once the chunk is written (cached + chunk)
    block_table: torch.Tensor
    _masks: dict = field(default_factory=dict)

    def mask(self, window: int | None, chunk: int | None = None) -> torch.Tensor | None:
        """[num_tokens, context_len] causal mask; None means plain causal (no cached context)."""
        if window is None and chunk is None and self.context_len == self.num_tokens:
            return None
        if (window, chunk) not in self._masks:
            q_pos = torch.arange(self.context_len - self.num_tokens, self.context_len)[:, None]
            k_pos = torch.arange(self.context_len)[None, :]
            self._masks[window, chunk] = local_causal(q_pos, k_pos, window, chunk)
        return self._masks[window, chunk]


@dataclass(slots=True)
class AttentionContext:
    """What attention needs to know about the current step."""

    slot_mapping: torch.Tensor
    paged: PagedBatch | None = None
    prefills: list[Prefill] = field(default_factory=list)
    native_layers: bool = False  # every row paged, no adapter, no image, a plain cache: layers may run natively
    adapters: bool = False  # some rows run a LoRA adapter: its hooked layers act


_context: AttentionContext | None = None


def set_context(context: AttentionContext | None) -> None:
    global _context
    _context = context


def get_context() -> AttentionContext:
    assert _context is not None, "attention called outside a model-runner step"
    return _context


def step_has_adapters() -> bool:
    """Whether LoRA adapters act in the current step; outside a step (a model called directly), assume so."""
    return _context is None or _context.adapters


def local_causal(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int | None, chunk: int | None) -> torch.Tensor:
    """Which keys each query sees: earlier positions, no older than `window` tokens (sliding
    window), and only within its own block of `chunk` positions (Llama 4's chunked attention)."""
    visible = k_pos <= q_pos
    if window is not None:
        visible &= k_pos > q_pos - window
    if chunk is not None:
        visible &= k_pos >= q_pos // chunk * chunk
    return visible


def gather_blocks(cache: torch.Tensor, block_table: torch.Tensor) -> torch.Tensor:
    """The blocks of a table (any shape), as [..., tokens, kv_heads, head_dim]."""
    flat = cache.view(cache.shape[0], -1).index_select(0, block_table.flatten().long())  # whole blocks at once
    return flat.view(*block_table.shape[:-1], -1, *cache.shape[2:])


def quantize_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[..., dim] -> int8 values and a float32 scale per row ([..., 1]): x ≈ values * scale."""
    scale = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-8) / 127
    return (x.float() / scale).round().clamp(-127, 127).to(torch.int8), scale


def read_blocks(cache: torch.Tensor, scales: torch.Tensor | None, block_table: torch.Tensor,
                dtype: torch.dtype) -> torch.Tensor:
    """`gather_blocks` of a cache in `dtype`: dequantized when it is int8 with its `scales`, widened
    when it is a 16-bit cache under float32 activations."""
    blocks = gather_blocks(cache, block_table)
    return (blocks if scales is None else blocks * gather_blocks(scales, block_table)).to(dtype)


def paged_attention_reference(
    q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, batch: PagedBatch, scale: float, window: int | None,
    softcap: float | None = None, chunk: int | None = None,
    k_scale: torch.Tensor | None = None, v_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """What the native kernel computes, in PyTorch: every sequence's blocks gathered into one batch
    padded to the longest table, its queries padded to the most any sequence has."""
    n = batch.context_lens.shape[0]
    starts = batch.query_starts.long()
    q_lens = starts[1:] - starts[:-1]
    seq_of_row = torch.repeat_interleave(torch.arange(n), q_lens)
    index_in_seq = torch.arange(batch.num_tokens) - starts[:-1][seq_of_row]
    max_q = int(q_lens.max())
    query = q.new_zeros(n, max_q, *q.shape[1:])
    query[seq_of_row, index_in_seq] = q
    keys = read_blocks(k_cache, k_scale, batch.block_tables, q.dtype).transpose(1, 2)  # [n, kvh, max_len, d]
    values = read_blocks(v_cache, v_scale, batch.block_tables, q.dtype).transpose(1, 2)
    lens = batch.context_lens.long()[:, None, None]
    q_pos = (lens - q_lens[:, None, None]) + torch.arange(max_q)[None, :, None]  # [n, max_q, 1]
    k_pos = torch.arange(keys.shape[2])[None, None, :]
    visible = local_causal(q_pos, k_pos, window, chunk) & (k_pos < lens)
    visible |= (torch.arange(max_q)[None, :, None] >= q_lens[:, None, None]) & (k_pos == 0)  # padding rows: no NaN
    out = attend(query.transpose(1, 2), keys, values, visible[:, None], scale, softcap)
    return out.transpose(1, 2)[seq_of_row, index_in_seq]


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float,
           softcap: float | None = None) -> torch.Tensor:
    """SDPA over [batch, heads, tokens, dim] (GQA: fewer key/value heads); `mask` None means causal.
    With `softcap` (Gemma 2) the scores go through cap * tanh(score / cap) before the softmax, which
    SDPA cannot do: the scores are then made explicitly."""
    if not softcap:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, scale=scale,
                                              enable_gqa=True)
    group = q.shape[-3] // k.shape[-3]
    k, v = k.repeat_interleave(group, dim=-3), v.repeat_interleave(group, dim=-3)
    scores = torch.tanh((q @ k.transpose(-1, -2)) * (scale / softcap)) * softcap
    if mask is None:
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril(k.shape[-2] - q.shape[-2])
    return scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v


class PagedAttention(nn.Module):
    def __init__(
        self, num_heads: int, num_kv_heads: int, head_dim: int, scale: float, sliding_window: int | None = None,
        softcap: float | None = None, shared_kv: bool = False, chunk: int | None = None,
    ) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.scale = scale
        self.sliding_window = sliding_window
        self.chunk = chunk  # chunked attention (Llama 4): keys only from the query's own block of `chunk` positions
        self.softcap = softcap  # attention logits soft-capped (Gemma 2), None for plain softmax attention
        self.shared_kv = shared_kv  # keys are their own values (MLA's latents): one cache serves as both
        self.k_cache = self.v_cache = torch.empty(0)  # bound by the model runner
        self.k_scale = self.v_scale = None  # with an int8 cache: a float32 scale per token and head

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q: [T, num_heads, head_dim], k/v: [T, num_kv_heads, head_dim] -> [T, num_heads, head_dim]."""
        ctx = get_context()
        self._write(self.k_cache, self.k_scale, ctx.slot_mapping, k)
        if not self.shared_kv:
            self._write(self.v_cache, self.v_scale, ctx.slot_mapping, v)
        out = torch.empty_like(q)
        if (paged := ctx.paged) is not None:
            n, query = paged.num_tokens, q[: paged.num_tokens].contiguous()
            if (ops := native_ops()) is not None and q.is_cpu:
                ops.paged_attention(out[:n], query, self.k_cache, self.v_cache, paged.block_tables,
                                    paged.context_lens, paged.query_starts, self.scale, self.sliding_window or 0,
                                    self.softcap or 0.0, self.chunk or 0, self.k_scale, self.v_scale)
            else:
                out[:n] = paged_attention_reference(query, self.k_cache, self.v_cache, paged, self.scale,
                                                    self.sliding_window, self.softcap, self.chunk,
                                                    self.k_scale, self.v_scale)
        for p in ctx.prefills:
            rows = slice(p.start, p.start + p.num_tokens)
            if p.context_len == p.num_tokens:  # nothing cached before the chunk: its own keys and values
                keys, values = k[rows], v[rows]
            else:
                keys = read_blocks(self.k_cache, self.k_scale, p.block_table, q.dtype)[: p.context_len]  # [L, kvh, d]
                values = read_blocks(self.v_cache, self.v_scale, p.block_table, q.dtype)[: p.context_len]
            o = attend(q[rows].transpose(0, 1)[None], keys.transpose(0, 1)[None], values.transpose(0, 1)[None],
                       p.mask(self.sliding_window, self.chunk), self.scale, self.softcap)  # [1, H, n, d]
            out[rows] = o[0].transpose(0, 1)
        return out

    def _write(self, cache: torch.Tensor, scales: torch.Tensor | None, slots: torch.Tensor, x: torch.Tensor) -> None:
        if scales is not None:  # an int8 cache: the values quantized, their scales beside them
            x, scale = quantize_int8(x)
            scales.view(-1, self.num_kv_heads, 1).index_copy_(0, slots, scale)
        cache.view(-1, self.num_kv_heads, self.head_dim).index_copy_(0, slots, x.to(cache.dtype))
