"""The native paged-attention kernel against the PyTorch reference, and the reference against plain
SDPA over each sequence's contiguous keys: decodes, draft verification, GQA, sliding windows, dtypes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from agentforge.engine.attention import PagedBatch, paged_attention_reference, quantize_int8
from agentforge.engine.kernels import native_ops

BLOCK = 16


def make_case(dtype: torch.dtype, num_heads: int, num_kv_heads: int, context_lens: list[int], q_lens: list[int],
              head_dim: int = 64, seed: int = 0, cache_dtype: torch.dtype | None = None):
    """A shuffled paged cache (in `cache_dtype`, by default `dtype`; int8 with its scales, else None) holding each
    sequence's keys/values (as read back: dequantized), and the queries of its last tokens."""
    g = torch.Generator().manual_seed(seed)
    tables, keys, values, used = [], [], [], 0
    num_blocks = sum(-(-n // BLOCK) for n in context_lens) + 3
    perm = torch.randperm(num_blocks, generator=g).tolist()  # blocks scattered over the cache
    k_cache = torch.randn(num_blocks, BLOCK, num_kv_heads, head_dim, generator=g)
    v_cache = torch.randn(num_blocks, BLOCK, num_kv_heads, head_dim, generator=g)
    scales = None, None
    if cache_dtype == torch.int8:
        (k_cache, k_scale), (v_cache, v_scale) = quantize_int8(k_cache), quantize_int8(v_cache)
        scales = k_scale, v_scale
        k_read, v_read = k_cache * k_scale, v_cache * v_scale
    else:
        k_cache, v_cache = k_cache.to(cache_dtype or dtype), v_cache.to(cache_dtype or dtype)
        k_read, v_read = k_cache, v_cache
    for n in context_lens:
        blocks = perm[used : used + -(-n // BLOCK)]
        used += len(blocks)
        tables.append(blocks)
        keys.append(k_read[blocks].flatten(0, 1)[:n])
        values.append(v_read[blocks].flatten(0, 1)[:n])
    width = max(map(len, tables))
    starts = [0]
    for q in q_lens:
        starts.append(starts[-1] + q)
    batch = PagedBatch(
        starts[-1],
        torch.tensor(starts, dtype=torch.int32),
        torch.tensor([t + [0] * (width - len(t)) for t in tables], dtype=torch.int32),
        torch.tensor(context_lens, dtype=torch.int32),
    )
    q = torch.randn(starts[-1], num_heads, head_dim, generator=g).to(dtype)
    return q, k_cache, v_cache, batch, keys, values, scales


def contiguous_attention(q, keys, values, batch: PagedBatch, scale: float, window: int | None,
                         softcap: float | None = None, chunk: int | None = None) -> torch.Tensor:
    """Each sequence on its own, over its keys in order, causal from its first query's position:
    SDPA, or with `softcap` the scores written out (cap * tanh(score / cap), then softmax)."""
    out = []
    for i, (k, v) in enumerate(zip(keys, values)):
        rows = q[batch.query_starts[i] : batch.query_starts[i + 1]]
        n, length = rows.shape[0], k.shape[0]
        q_pos = torch.arange(length - n, length)[:, None]
        k_pos = torch.arange(length)[None, :]
        mask = k_pos <= q_pos
        if window is not None:
            mask &= k_pos > q_pos - window
        if chunk is not None:
            mask &= k_pos // chunk == q_pos // chunk
        query, k, v = rows.transpose(0, 1).float(), k.transpose(0, 1).float(), v.transpose(0, 1).float()
        if softcap:
            group = query.shape[0] // k.shape[0]
            k, v = k.repeat_interleave(group, 0), v.repeat_interleave(group, 0)
            scores = softcap * torch.tanh(query @ k.transpose(1, 2) * scale / softcap)
            o = torch.where(mask, scores, float("-inf")).softmax(-1) @ v
        else:
            o = F.scaled_dot_product_attention(query[None], k[None], v[None], attn_mask=mask, scale=scale,
                                               enable_gqa=True)[0]
        out.append(o.transpose(0, 1))
    return torch.cat(out)


CASES = [
    # heads, kv heads, context lengths, query tokens per sequence, sliding window, logit soft-cap, chunk
    (9, 3, [1, 17, 300, 64], [1, 1, 1, 1], None, None, None),  # decodes, SmolLM2's GQA
    (4, 4, [40, 5, 129], [4, 1, 9], None, None, None),  # draft verification next to a decode, MHA
    (8, 1, [100, 33], [1, 3], 24, None, None),  # MQA with a sliding window shorter than the context
    (8, 2, [70, 9], [1, 4], 16, 0.5, None),  # Gemma 2: soft-capped scores, with a sliding window
    (4, 2, [70, 33, 16], [1, 5, 2], None, None, 16),  # Llama 4: chunks of 16, queries on both sides of a border
    # a batch of decodes and a verification, with a window: a work item per sequence on two threads as well
    (6, 3, [90, 1, 47, 300, 16, 33, 128, 5, 64], [1, 1, 1, 3, 1, 1, 1, 1, 1], 40, None, None),
    # one long sequence, whose keys the kernel takes in parts of 256 positions on two threads: three parts,
    # verification rows on both sides of a part's border (the first see none of the second part), soft-capped
    # chunks of 64
    (9, 3, [600], [1], None, None, None),
    (9, 3, [258], [4], None, None, None),
    (8, 2, [520], [3], None, 0.5, 64),
]


@pytest.mark.parametrize("heads,kv_heads,lens,q_lens,window,softcap,chunk", CASES)
def test_the_reference_matches_attention_over_contiguous_keys(heads, kv_heads, lens, q_lens, window, softcap, chunk):
    q, k_cache, v_cache, batch, keys, values, _ = make_case(torch.float32, heads, kv_heads, lens, q_lens)
    got = paged_attention_reference(q, k_cache, v_cache, batch, 0.125, window, softcap, chunk)
    expected = contiguous_attention(q, keys, values, batch, 0.125, window, softcap, chunk)
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.skipif(native_ops() is None, reason="no C++ toolchain to build the native kernels")
# the activations' dtype, the cache's (a 16-bit cache under float32, or int8 with scales: kv_cache_dtype; the
# reference reads the values the cache holds, so under float32 the output is float32-exact), the tolerance
@pytest.mark.parametrize("dtype,cache_dtype,atol", [
    (torch.float32, torch.float32, 1e-5), (torch.bfloat16, torch.bfloat16, 2e-2), (torch.float16, torch.float16, 4e-3),
    (torch.float32, torch.bfloat16, 1e-5), (torch.float32, torch.float16, 1e-5),
    (torch.float32, torch.int8, 1e-5), (torch.bfloat16, torch.int8, 2e-2), (torch.float16, torch.int8, 4e-3)])
@pytest.mark.parametrize("heads,kv_heads,lens,q_lens,window,softcap,chunk", CASES)
@pytest.mark.parametrize("head_dim", [64, 128, 256, 80])  # the vector passes' sizes; one the plain loops take
# one thread: four sequences or more make the kernel attend for all of a sequence's KV heads in one work item
@pytest.mark.parametrize("threads", [1, 2])
def test_the_native_kernel_matches_the_reference(dtype, cache_dtype, atol, heads, kv_heads, lens, q_lens, window,
                                                softcap, chunk, head_dim, threads):
    q, k_cache, v_cache, batch, keys, values, scales = make_case(dtype, heads, kv_heads, lens, q_lens, head_dim,
                                                                 cache_dtype=cache_dtype)
    out = torch.empty_like(q)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        native_ops().paged_attention(out, q, k_cache, v_cache, batch.block_tables, batch.context_lens,
                                     batch.query_starts, 0.125, window or 0, softcap or 0.0, chunk or 0, *scales)
    finally:
        torch.set_num_threads(before)
    expected = contiguous_attention(q, keys, values, batch, 0.125, window, softcap, chunk)  # in float32
    assert (out.float() - expected).abs().max() < atol


@pytest.mark.skipif(native_ops() is None, reason="no C++ toolchain to build the native kernels")
@pytest.mark.parametrize("dtype,cache_dtype", [(torch.bfloat16, torch.float16), (torch.float16, torch.float32),
                                               (torch.float64, torch.float64)])
def test_the_native_kernel_refuses_a_cache_its_queries_do_not_pair_with(dtype, cache_dtype):
    q, k_cache, v_cache, batch, _, _, _ = make_case(dtype, 4, 2, [20], [1], cache_dtype=cache_dtype)
    with pytest.raises(RuntimeError, match="caches q's"):
        native_ops().paged_attention(torch.empty_like(q), q, k_cache, v_cache, batch.block_tables, batch.context_lens,
                                     batch.query_starts, 0.125, 0, 0.0, 0)


@pytest.mark.skipif(native_ops() is None, reason="no C++ toolchain to build the native kernels")
def test_an_int8_cache_goes_with_its_scales_and_only_it():
    q, k_cache, v_cache, batch, _, _, (k_scale, v_scale) = make_case(torch.float32, 4, 2, [20], [1],
                                                                     cache_dtype=torch.int8)
    args = torch.empty_like(q), q, k_cache, v_cache, batch.block_tables, batch.context_lens, batch.query_starts, 0.125, 0, 0.0, 0
    with pytest.raises(RuntimeError, match="needs its k_scale and v_scale"):
        native_ops().paged_attention(*args)
    with pytest.raises(RuntimeError, match=r"float32 \[num_blocks, block_size, num_kv_heads, 1\]"):
        native_ops().paged_attention(*args, k_scale[:-1].contiguous(), v_scale)  # one block short
    with pytest.raises(RuntimeError, match="with an int8 KV cache only"):
        native_ops().paged_attention(args[0], q, k_scale.expand(*k_cache.shape).float().contiguous(),
                                     v_scale.expand(*v_cache.shape).float().contiguous(), *args[4:], k_scale, v_scale)
