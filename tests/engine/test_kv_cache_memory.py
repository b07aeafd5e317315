"""The paged KV cache is zeros that take resident memory only as blocks are written: an engine with a
1 GiB cache starts without a gigabyte of page writes, and its cache still reads as zeros — unless it
is asked to map the whole cache at start-up (a server)."""

import os

import pytest
import torch

from agentforge.engine import LLM, SamplingParams
from agentforge.engine.errors import InvalidRequestError
from agentforge.engine.model_runner import attention_layers, lazy_zeros


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_lazy_zeros_are_aligned_writable_zeros():
    for dtype in (torch.float32, torch.bfloat16, torch.int8):
        t = lazy_zeros((3, 16, 2, 8), dtype)
        assert t.shape == (3, 16, 2, 8) and t.dtype == dtype and t.is_contiguous()
        assert t.data_ptr() % 64 == 0 and not t.any()
        t[1, 2] = 1
        assert int(t.count_nonzero()) == 16


def test_an_engine_cache_costs_memory_as_it_is_used(tiny_llama_dir):
    before = resident_bytes()
    llm = LLM(tiny_llama_dir, kv_cache_bytes=1 << 30)
    assert resident_bytes() - before < 256 << 20  # not the 1 GiB the cache spans
    layer = attention_layers(llm.engine.model)[0]
    assert layer.k_cache.numel() * layer.k_cache.element_size() * 2 * len(attention_layers(llm.engine.model)) > 900 << 20
    out = llm.generate("Hello there", SamplingParams(temperature=0, max_tokens=8, ignore_eos=True))[0]
    assert len(out.outputs[0].token_ids) == 8
    assert layer.k_cache.any() and not layer.k_cache[-1].any()  # written where used, zeros elsewhere


def test_a_populated_cache_is_resident_from_the_start(tiny_llama_dir):
    before = resident_bytes()
    cache = lazy_zeros((64 << 20,), torch.uint8, populate=True)
    assert resident_bytes() - before >= 60 << 20 and not cache.any()
    before = resident_bytes()
    llm = LLM(tiny_llama_dir, kv_cache_bytes=256 << 20, kv_cache_populate=True)
    assert resident_bytes() - before >= 240 << 20
    out = llm.generate("Hello there", SamplingParams(temperature=0, max_tokens=8, ignore_eos=True))[0]
    assert len(out.outputs[0].token_ids) == 8
    with pytest.raises(InvalidRequestError, match="kv_cache_populate"):
        LLM(tiny_llama_dir, kv_cache_populate="yes")
