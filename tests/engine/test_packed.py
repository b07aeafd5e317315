"""Stacked, oneDNN and prepacked linear layers (`engine/packed.py`): the same outputs as the plain layers,
the parameters (names, storage) unchanged, and the packed copies laid out again when weights change."""

import pytest
import torch
import torch.nn.functional as F

from agentforge.engine import LLM, SamplingParams
from agentforge.engine.packed import PACKED_ROWS, PackedLinear, linear_kernel, pack_model

needs_packing = pytest.mark.skipif(linear_kernel(torch.bfloat16) != "prepacked",
                                   reason="no native bfloat16 matmuls on this CPU")


def tiny_model(dtype: torch.dtype, bias: bool = False):
    from transformers import LlamaConfig

    from agentforge.engine.models import ARCHITECTURES

    config = LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, attention_bias=bias,
                         architectures=["LlamaForCausalLM"])
    torch.manual_seed(0)
    return ARCHITECTURES["LlamaForCausalLM"](config).to(dtype).eval()


@pytest.mark.parametrize("kernel", ["linear", "onednn", pytest.param("prepacked", marks=needs_packing)])
@pytest.mark.parametrize("bias", [False, True])
def test_stacked_and_packed_layers_compute_what_the_plain_layers_do(kernel, bias):
    dtype = torch.bfloat16 if kernel == "prepacked" else torch.float32
    plain, packed = tiny_model(dtype, bias), tiny_model(dtype, bias)
    names = [name for name, _ in packed.named_parameters()]
    pack_model(packed, kernel)
    assert [name for name, _ in packed.named_parameters()] == names  # adapters and weight loading find them
    attn, mlp = packed.model.layers[0].self_attn, packed.model.layers[0].mlp
    assert attn.k_proj.weight.untyped_storage().data_ptr() == attn.qkv_proj.weight.untyped_storage().data_ptr()
    assert isinstance(packed.lm_head, PackedLinear) == (kernel != "linear")
    assert (attn.qkv_proj.packed is not None) == (kernel == "prepacked")

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        # stacked: each output row is the same dot product; oneDNN's kernels may sum in another order (for
        # the packed layout the same on this machine's AMX; allow a bfloat16 ulp elsewhere)
        if kernel == "linear":
            return torch.equal(a, b)
        return torch.allclose(a, b, rtol=8e-3, atol=1e-3) if kernel == "prepacked" else torch.allclose(a, b, atol=1e-5)

    with torch.inference_mode():
        for rows in (3, PACKED_ROWS + 5):  # the packed weights, and F.linear for a long prompt chunk
            x = torch.randn(rows, 64).to(dtype)
            ref_attn, ref_mlp = plain.model.layers[0].self_attn, plain.model.layers[0].mlp
            for got, expected in zip(attn.project(x), ref_attn.project(x)):
                assert same(got, expected)
            assert same(mlp(x), ref_mlp(x))
            assert same(packed.lm_head(x), plain.lm_head(x))
            assert same(attn.o_proj(x), ref_attn.o_proj(x))
            if kernel != "prepacked":  # a part run alone (an adapter hooks it) gives its stacked outputs exactly
                assert torch.equal(attn.k_proj(x), attn.project(x)[1].flatten(1))
                assert torch.equal(mlp.up_proj(x), mlp.gate_up_proj(x)[:, mlp.up_proj.out_features:])


@needs_packing
def test_a_bfloat16_engine_packs_and_repacks_when_its_weights_change(tiny_llama_dir):
    llm = LLM(str(tiny_llama_dir), dtype="bfloat16", kv_cache_bytes=1 << 24)
    model = llm.engine.model
    attn = model.model.layers[0].self_attn
    assert attn.qkv_proj.packed is not None and isinstance(model.lm_head, PackedLinear)
    prompt = [5, 17, 250, 1033, 12]
    before = llm.generate(prompt, SamplingParams(temperature=0, max_tokens=6, ignore_eos=True))[0].outputs[0].token_ids
    torch.manual_seed(1)
    new = {name: torch.randn_like(p) * 0.2 for name, p in model.named_parameters() if "layers.0.self_attn" in name}
    llm.engine.load_weights(new)
    x = torch.randn(4, attn.q_proj.in_features).bfloat16()
    stacked = torch.cat([new[f"model.layers.0.self_attn.{n}_proj.weight"] for n in "qkv"])
    with torch.inference_mode():
        assert torch.allclose(attn.qkv_proj(x), F.linear(x, stacked), rtol=8e-3, atol=1e-3)  # the new weights
    after = llm.generate(prompt, SamplingParams(temperature=0, max_tokens=6, ignore_eos=True))[0].outputs[0].token_ids
    assert after != before
