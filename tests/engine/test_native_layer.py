"""Decoder layers as one native call in decode-only steps (`engine/native_layer.py`): the same tokens and
log-probabilities as the module path, and the module path wherever the native one would not be exact."""

from __future__ import annotations

import pytest
import torch

from agentforge.engine import LLM, SamplingParams
from agentforge.engine.kernels import native_ops
from agentforge.engine.native_layer import NativeDecodeLayer
from agentforge.engine.quant import SMALL_BATCH

pytestmark = pytest.mark.skipif(native_ops() is None, reason="no C++ toolchain to build the native kernels")

PROMPTS = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10] * 3, [42, 17, 99, 5], list(range(100, 160))]


def generate(llm: LLM, native: bool, **params) -> list:
    """Greedy tokens and log-probabilities (engines here run without prefix caching: a cached prompt's
    last token is computed by another path, which moves log-probabilities by ~1e-5)."""
    layers = llm.engine.model.model.layers
    saved = [layer.native for layer in layers]
    if not native:
        for layer in layers:
            layer.native = None
    try:
        outs = llm.generate(PROMPTS, SamplingParams(temperature=0, max_tokens=16, ignore_eos=True, logprobs=2, **params))
    finally:
        for layer, value in zip(layers, saved):
            layer.native = value
    return [(o.outputs[0].token_ids, [(lp.token_id, lp.logprob) for lp in o.outputs[0].logprobs]) for o in outs]


@pytest.fixture
def native_calls(monkeypatch):
    """How many layer calls ran natively."""
    calls = []
    call = NativeDecodeLayer.__call__

    def counting(self, hidden, cos_sin):
        out = call(self, hidden, cos_sin)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(NativeDecodeLayer, "__call__", counting)
    return calls


@pytest.mark.parametrize("speculative_tokens", [0, 3])  # drafts: several rows per sequence in a decode step
# then other KV caches: 16 bits under float32, int8 (the native layer rounds or quantizes keys and values to the
# bits the module path writes)
@pytest.mark.parametrize("dtype,quantization,kv_cache_dtype", [
    ("float32", "int4", None), ("bfloat16", "int4", None), ("float32", "int8", None), ("float32", "int4", "bfloat16"),
    ("float32", "int8", "float16"), ("float32", "int4", "int8"), ("bfloat16", "int4", "int8")])
def test_native_layers_give_the_module_paths_tokens_and_logprobs(tiny_llama_dir, native_calls, speculative_tokens, dtype,
                                                                 quantization, kv_cache_dtype):
    llm = LLM(tiny_llama_dir, quantization=quantization, dtype=dtype, speculative_tokens=speculative_tokens,
              kv_cache_bytes=16 << 20, enable_prefix_caching=False, kv_cache_dtype=kv_cache_dtype)
    assert all(layer.native is not None for layer in llm.engine.model.model.layers)
    native = generate(llm, native=True)
    assert any(native_calls) and not all(native_calls)  # decode steps natively, prompt steps by modules
    assert native == generate(llm, native=False)  # bit for bit: the same kernels in the same order


def test_layers_without_quantized_weights_or_with_biases_stay_modules(tiny_llama_dir):
    from transformers import LlamaConfig

    from agentforge.engine.models import ARCHITECTURES
    from agentforge.engine.quant import quantize_model

    llm = LLM(tiny_llama_dir, kv_cache_bytes=16 << 20)
    assert all(layer.native is None for layer in llm.engine.model.model.layers)
    for bias, native in ((False, True), (True, False)):  # q/k/v and o biases: not what the kernel computes
        config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                             num_attention_heads=4, num_key_value_heads=2, attention_bias=bias)
        model = quantize_model(ARCHITECTURES["LlamaForCausalLM"](config), "int4", torch.float32)
        assert (NativeDecodeLayer.of(model.model.layers[0]) is not None) == native


def test_a_step_with_an_adapter_runs_the_modules_and_applies_it(tiny_llama_dir, make_lora_adapter, tmp_path, native_calls):
    make_lora_adapter(tiny_llama_dir, tmp_path / "adapter", seed=3)
    llm = LLM(tiny_llama_dir, quantization="int4", kv_cache_bytes=16 << 20, enable_prefix_caching=False,
              lora_adapters={"a": tmp_path / "adapter"})
    adapted = generate(llm, native=True, lora="a")
    assert not any(native_calls)  # every step had the adapter's rows
    assert adapted == generate(llm, native=False, lora="a")
    assert adapted != generate(llm, native=True)  # the adapter was applied
    assert any(native_calls)  # and base requests decode natively beside a loaded adapter


def test_a_decode_step_of_more_rows_than_the_quantized_kernels_take_runs_the_modules(tiny_llama_dir, native_calls):
    llm = LLM(tiny_llama_dir, quantization="int4", kv_cache_bytes=16 << 20, max_num_seqs=64)
    llm.generate([[i + 1, i + 2] for i in range(SMALL_BATCH + 1)], SamplingParams(max_tokens=3, ignore_eos=True))
    assert native_calls and not any(native_calls)  # 33 rows: dequantized float matmuls, as the modules do


def test_the_native_layer_refuses_weights_and_slots_it_would_read_or_write_out_of_bounds(tiny_llama_dir):
    llm = LLM(tiny_llama_dir, quantization="int4", kv_cache_bytes=16 << 20)
    layer = llm.engine.model.model.layers[0].native
    head_dim = 64 // layer.num_heads
    cache = torch.zeros(2, 16, layer.num_kv_heads, head_dim)

    def call(weights=layer.weights, slot=3):
        return native_ops().decode_layer(
            torch.randn(1, 64), list(weights), False, torch.ones(1, 1, head_dim), torch.zeros(1, 1, head_dim), cache,
            cache.clone(), torch.tensor([slot]), torch.tensor([[0]], dtype=torch.int32),
            torch.tensor([slot + 1], dtype=torch.int32), torch.tensor([0, 1], dtype=torch.int32), layer.num_heads,
            layer.num_kv_heads, layer.eps, head_dim**-0.5, 0, 0.0, 0)

    assert call().shape == (1, 64) and cache[0, 3].abs().sum() > 0  # a valid call writes its key into the slot
    with pytest.raises(RuntimeError, match="outside the cache"):
        call(slot=32)
    swapped = list(layer.weights)
    swapped[1:3], swapped[3:5] = swapped[3:5], swapped[1:3]  # q/k/v and o_proj exchanged
    with pytest.raises(RuntimeError, match="linear layer's weights"):
        call(weights=swapped)
