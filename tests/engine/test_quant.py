"""Weight-only int4 / int8 (and bfloat16), and the int8 KV cache: exact on Q4_1-style weights,
bounded logit error and greedy agreement against float32 on SmolLM2, and the memory they save."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from agentforge.engine import LLM, SamplingParams
from agentforge.engine.errors import InvalidRequestError
from agentforge.engine.quant import GROUP, Int4Linear, Int6Linear, Int8Linear, quantize_model

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Three tips for better sleep:",
    "Water boils at",
    "Once upon a time, in a small village,",
    "The main parts of a CPU are",
]


def q4_1_weight(out_features: int, in_features: int) -> torch.Tensor:
    """Weights as llama.cpp's Q4_1 leaves them: q * d + m per block of 32, each block spanning 0..15."""
    g = torch.Generator().manual_seed(0)
    q = torch.randint(0, 16, (out_features, in_features // GROUP, GROUP), generator=g)
    q[..., 0], q[..., 1] = 0, 15  # the block's min and max (Q4_1 maps them to 0 and 15)
    d = (torch.rand(out_features, in_features // GROUP, 1, generator=g) * 0.02 + 0.001).bfloat16().float()
    m = (torch.randn(out_features, in_features // GROUP, 1, generator=g) * 0.05).bfloat16().float()
    return (q * d + m).view(out_features, in_features)


def test_int4_reproduces_q4_1_weights_exactly():
    linear = nn.Linear(256, 96, bias=True)
    with torch.no_grad():
        linear.weight.copy_(q4_1_weight(96, 256))
    layer = Int4Linear(linear)
    assert torch.equal(layer.dequantize(torch.float32), linear.weight)
    x = torch.randn(40, 256)  # a prompt chunk multiplies the dequantized weights (a few rows: test_layer_kernels.py)
    with torch.inference_mode():
        assert torch.allclose(layer(x), linear(x), atol=1e-5)


def test_int8_linear_error_is_bounded():
    linear = nn.Linear(128, 64)
    x = torch.randn(3, 128)
    exact = linear(x)
    assert ((Int8Linear(linear)(x) - exact).norm() / exact.norm()) < 1e-2


@pytest.fixture(scope="module")
def greedy_float32():
    llm = LLM("smollm2-135m", max_num_seqs=8, kv_cache_bytes=64 << 20)
    return [(o.prompt_token_ids, o.outputs[0].token_ids)
            for o in llm.generate(PROMPTS, SamplingParams(temperature=0, max_tokens=24))]


def agreement(reference: list[tuple[list[int], list[int]]], outs: list[list[int]]) -> float:
    """Share of greedy tokens produced before the two runs first differ."""
    same = 0
    for (_, x), y in zip(reference, outs):
        same += next((i for i, (s, t) in enumerate(zip(x, y)) if s != t), len(x))
    return same / sum(len(x) for _, x in reference)


def step_agreement(llm: LLM, reference: list[tuple[list[int], list[int]]], chunk: int | None = None) -> float:
    """Share of float32's greedy steps at which `llm`, fed the same tokens so far, picks the same next token.

    Free-running agreement counts only the tokens before the first difference, so one near-tie flipped
    early (it flips on one CPU's kernels and not another's) decides most of a prompt's score; per step,
    each near-tie costs one token."""
    same = total = 0
    for prompt, completion in reference:
        logits = logits_of(llm, torch.tensor(prompt + completion), chunk)
        picks = logits[len(prompt) - 1:-1].argmax(-1)
        same += int((picks == torch.tensor(completion)).sum())
        total += len(completion)
    return same / total


@pytest.mark.slow
@pytest.mark.parametrize("dtype,mode,max_error,min_agreement,min_saving", [
    # measured on 2026-12-03 (AMD EPYC, AVX2): errors 1.6 %, 3.7 %, 2.1 %, 2.3 %; per-step agreement 98.6 %,
    # 95.8 %, 99.3 %, 97.9 % (free-running, which a CI CPU's kernels moved from 79 % to 58 % for bfloat16-int4:
    # 87 %, 47 %, 79 %, 79 %); saving 5.7x, 4.0x. With int4's 6-bit embeddings / LM head (2026-12-05, Intel
    # Xeon, AVX-512): int4 2.5 % (agreement 97.2 / 96.5 %), bfloat16-int4 3.4 % / 3.1 % (95.8 %); saving 6.0x
    ("float32", "int4", 0.03, 0.93, 6.0),
    ("float32", "int8", 0.05, 0.9, 3.5),
    ("bfloat16", None, 0.03, 0.95, 2.0),
    ("bfloat16", "int4", 0.045, 0.93, 6.0),
])
def test_faster_weights_stay_close_to_float32(greedy_float32, dtype, mode, max_error, min_agreement, min_saving):
    reference = LLM("smollm2-135m", max_num_seqs=8, kv_cache_bytes=64 << 20)
    quantized = LLM("smollm2-135m", max_num_seqs=8, kv_cache_bytes=64 << 20, quantization=mode, dtype=dtype)
    ids = torch.tensor(reference.engine.tokenizer.encode(" ".join(PROMPTS)))

    def weight_bytes(llm: LLM) -> int:
        # the memory the matrices hold (norms and rotary tables aside), each storage once: stacked q/k/v and
        # gate/up weights are what their parts are views of
        storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                    for t in [*llm.engine.model.parameters(), *llm.engine.model.buffers()] if t.dim() > 1}
        return sum(storages.values())

    assert weight_bytes(reference) / weight_bytes(quantized) >= min_saving
    expected = logits_of(reference, ids)
    for chunk in (None, 8):  # whole-prompt matmuls, and the few-row path of decodes (the native kernels)
        error = (logits_of(quantized, ids, chunk) - expected).norm() / expected.norm()
        assert error < max_error, chunk
        assert step_agreement(quantized, greedy_float32, chunk) >= min_agreement, chunk


def logits_of(llm: LLM, ids: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """Every position's logits for one prompt, straight through the model: in one pass, or `chunk`
    tokens at a time, each chunk reading the earlier ones back from the KV cache — with a few rows
    per step, the linear layers run as in decodes and draft verification (quantized: the native kernels)."""
    from agentforge.engine.attention import AttentionContext, Prefill, set_context

    model = llm.engine.model
    blocks = llm.engine.block_manager.block_size
    table = torch.arange(-(-len(ids) // blocks), dtype=torch.int32)
    step = chunk or len(ids)
    logits = []
    try:
        with torch.inference_mode():
            for start in range(0, len(ids), step):
                end = min(start + step, len(ids))
                set_context(AttentionContext(torch.arange(start, end), None, [Prefill(0, end - start, end, table)]))
                logits.append(model.compute_logits(model(ids[start:end], torch.arange(start, end))).float())
    finally:
        set_context(None)
    return torch.cat(logits)


def test_an_unknown_quantization_is_refused():
    with pytest.raises(InvalidRequestError, match="quantization"):
        LLM("smollm2-135m", quantization="int3")


@pytest.mark.parametrize("mode", ["int4", "int8"])
def test_quantize_model_keeps_a_tied_lm_head_tied(mode):
    from transformers import LlamaConfig

    from agentforge.engine.models import ARCHITECTURES

    config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True,
                         architectures=["LlamaForCausalLM"])
    torch.manual_seed(0)
    model = ARCHITECTURES["LlamaForCausalLM"](config)
    ids, hidden = torch.tensor([[3, 17, 63]]), torch.randn(2, 64)
    with torch.inference_mode():
        embedded, logits = model.model.embed_tokens(ids), model.lm_head(hidden)
        quantize_model(model, mode, torch.float32)
        assert isinstance(model.model.layers[0].self_attn.q_proj, Int4Linear if mode == "int4" else Int8Linear)
        if mode == "int4":  # one 6-bit table for both
            assert isinstance(model.lm_head, Int6Linear) and model.lm_head is model.model.embed_tokens.table
        else:  # one int8 table for both
            assert model.lm_head.values is model.model.embed_tokens.values
        assert relative_error(model.model.embed_tokens(ids), embedded) < (0.02 if mode == "int4" else 0.01)
        assert relative_error(model.lm_head(hidden), logits) < (0.02 if mode == "int4" else 0.01)


def test_6_bit_weights_stay_within_half_a_step_of_their_group_and_refuse_other_shapes():
    torch.manual_seed(0)
    linear = nn.Linear(96, 300, bias=False)
    with torch.no_grad():
        linear.weight.mul_(torch.logspace(-3, 1, 300)[:, None])  # rows of very different scales
        linear.weight[7] = 0  # an all-zero row
        linear.weight[9, :32] = 0.5  # a constant group
    weight = linear.weight.detach()
    layer = Int6Linear(linear)
    dequantized = layer.dequantize(torch.float32)
    assert dequantized.shape == weight.shape and torch.equal(dequantized[7], weight[7])
    groups = weight.view(300, 3, 32)
    step = (groups.amax(-1) - groups.amin(-1)) / 63  # a group's 6-bit step
    # half a step, plus what rounding the group's scale and offset to 8 bits of the row's costs
    bound = step / 2 + (groups.amax(-1) - groups.amin(-1)).amax(-1, keepdim=True) / 255 + groups.abs().amax((-1, -2))[:, None] / 254
    assert ((dequantized - weight).abs().view(300, 3, 32).amax(-1) <= bound * 1.01).all()
    assert torch.equal(layer.dequantize(torch.float32, torch.tensor([9, 2])), dequantized[[9, 2]])
    with pytest.raises(RuntimeError):
        Int6Linear(nn.Linear(100, 4))  # not a multiple of 32 inputs


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.float() - expected.float()).norm() / expected.float().norm())


@pytest.mark.parametrize("mode", ["int4", "int8"])
@pytest.mark.parametrize("bias", [False, True])
def test_quantization_stacks_qkv_and_gate_up_and_the_stack_computes_what_the_parts_do(mode, bias):
    from transformers import LlamaConfig

    from agentforge.engine.models import ARCHITECTURES

    config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, attention_bias=bias,
                         architectures=["LlamaForCausalLM"])
    torch.manual_seed(0)
    model = quantize_model(ARCHITECTURES["LlamaForCausalLM"](config), mode, torch.float32)
    attn, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    assert attn.qkv_proj.out_features == 64 + 32 + 32 and mlp.gate_up_proj.out_features == 256
    stacked = attn.qkv_proj.qs if mode == "int4" else attn.qkv_proj.values
    part = attn.k_proj.qs if mode == "int4" else attn.k_proj.values
    assert part.untyped_storage().data_ptr() == stacked.untyped_storage().data_ptr()  # views, not a second copy
    x = torch.randn(3, 64)
    with torch.inference_mode():
        fused = [t.clone() for t in attn.project(x)] + [mlp(x)]
        # a forward hook on a part (a LoRA adapter's) makes the parts run one by one
        handles = [attn.v_proj.register_forward_hook(lambda *a: None), mlp.up_proj.register_forward_hook(lambda *a: None)]
        separate = list(attn.project(x)) + [mlp(x)]
        for h in handles:
            h.remove()
    for a, b in zip(fused, separate):
        assert torch.equal(a, b)  # each output row is the same dot product, whichever matrix holds its weights


def test_a_moe_router_stays_exact():
    from transformers import DeepseekV3Config, HunYuanMoEV1Config, MixtralConfig

    from agentforge.engine.models import ARCHITECTURES

    shape = dict(vocab_size=64, hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                 num_key_value_heads=1)
    config = MixtralConfig(**shape, num_local_experts=4, num_experts_per_tok=2, architectures=["MixtralForCausalLM"])
    model = quantize_model(ARCHITECTURES["MixtralForCausalLM"](config), "int4", torch.float32)
    assert type(model.model.layers[0].mlp.gate) is nn.Linear
    assert isinstance(model.model.layers[0].self_attn.q_proj, Int4Linear)
    config = HunYuanMoEV1Config(**shape, head_dim=32, num_experts=4, moe_topk=2)
    model = quantize_model(ARCHITECTURES["HunYuanMoEV1ForCausalLM"](config), "int4", torch.float32)
    assert type(model.model.layers[0].mlp.gate.wg) is nn.Linear  # Hunyuan's router, one level down
    assert isinstance(model.model.layers[0].mlp.shared_mlp.up_proj, Int4Linear)
    config = DeepseekV3Config(**shape, kv_lora_rank=64, q_lora_rank=64, qk_nope_head_dim=16, qk_rope_head_dim=16,
                              v_head_dim=16, n_routed_experts=4, n_group=2, topk_group=1, num_experts_per_tok=2,
                              moe_intermediate_size=64, first_k_dense_replace=0)
    model = quantize_model(ARCHITECTURES["DeepseekV3ForCausalLM"](config), "int4", torch.float32)
    attention = model.model.layers[0].self_attn
    assert type(attention.kv_b_proj) is nn.Linear and isinstance(attention.q_b_proj, Int4Linear)  # MLA's matrices


def logits_after_cached_chunk(llm: LLM, ids: torch.Tensor, first: int) -> torch.Tensor:
    """Logits of ids[first:], prefilled as a second chunk: its attention reads the first chunk's
    keys and values back from the KV cache (quantized, if the cache is)."""
    from agentforge.engine.attention import AttentionContext, Prefill, set_context

    model = llm.engine.model
    table = torch.arange(-(-len(ids) // llm.engine.block_manager.block_size), dtype=torch.int32)
    try:
        with torch.inference_mode():
            for start, end in ((0, first), (first, len(ids))):
                set_context(AttentionContext(torch.arange(start, end), None, [Prefill(0, end - start, end, table)]))
                hidden = model(ids[start:end], torch.arange(start, end))
            return model.compute_logits(hidden).float()
    finally:
        set_context(None)


@pytest.mark.slow
def test_an_int8_kv_cache_holds_3_5x_the_tokens_and_stays_close_to_float32(greedy_float32):
    # measured on 2026-12-03: 3.76x the blocks, logit error 2.8 %, greedy agreement 81 % (between int4 and bfloat16
    # weights); a prompt's own chunk attends to its exact keys, what is read back from the cache is int8
    reference = LLM("smollm2-135m", max_num_seqs=8, kv_cache_bytes=64 << 20)
    int8 = LLM("smollm2-135m", max_num_seqs=8, kv_cache_bytes=64 << 20, kv_cache_dtype="int8")
    assert len(int8.engine.block_manager.blocks) >= 3.5 * len(reference.engine.block_manager.blocks)
    ids = torch.tensor(reference.engine.tokenizer.encode(" ".join(PROMPTS)))
    expected = logits_after_cached_chunk(reference, ids, 16)
    error = (logits_after_cached_chunk(int8, ids, 16) - expected).norm() / expected.norm()
    assert 0 < error < 0.04  # not zero: the cache really is int8
    outs = [o.outputs[0].token_ids for o in int8.generate(PROMPTS, SamplingParams(temperature=0, max_tokens=24))]
    assert agreement(greedy_float32, outs) >= 0.7
    # draft verification reads the same int8 keys a plain decode does: speculation changes nothing
    drafting = LLM("smollm2-135m", max_num_seqs=8, kv_cache_bytes=64 << 20, kv_cache_dtype="int8", speculative_tokens=4)
    assert [o.outputs[0].token_ids for o in drafting.generate(PROMPTS, SamplingParams(temperature=0, max_tokens=24))] == outs


# measured on 2026-12-06: logit error 0.55 % (bfloat16) and 0.15 % (float16), greedy agreement 100 % for both
MAX_ERROR_16_BIT_KV = {"bfloat16": 0.015, "float16": 0.005}


@pytest.mark.slow
@pytest.mark.parametrize("kv_cache_dtype", ["bfloat16", "float16"])
def test_a_16_bit_kv_cache_under_float32_holds_twice_the_tokens_and_stays_close_to_float32(greedy_float32,
                                                                                           kv_cache_dtype):
    # what is read back from the cache is rounded to 16 bits, everything else stays float32 (decodes through the
    # native kernel, which reads the 16-bit cache as it is)
    reference = LLM("smollm2-135m", max_num_seqs=8, kv_cache_bytes=64 << 20)
    half = LLM("smollm2-135m", max_num_seqs=8, kv_cache_bytes=64 << 20, kv_cache_dtype=kv_cache_dtype)
    assert len(half.engine.block_manager.blocks) == 2 * len(reference.engine.block_manager.blocks)
    ids = torch.tensor(reference.engine.tokenizer.encode(" ".join(PROMPTS)))
    expected = logits_after_cached_chunk(reference, ids, 16)
    error = (logits_after_cached_chunk(half, ids, 16) - expected).norm() / expected.norm()
    assert 0 < error < MAX_ERROR_16_BIT_KV[kv_cache_dtype]  # not zero: the cache really is 16 bits
    outs = [o.outputs[0].token_ids for o in half.generate(PROMPTS, SamplingParams(temperature=0, max_tokens=24))]
    assert agreement(greedy_float32, outs) >= 0.9
    drafting = LLM("smollm2-135m", max_num_seqs=8, kv_cache_bytes=64 << 20, kv_cache_dtype=kv_cache_dtype,
                   speculative_tokens=4)
    assert [o.outputs[0].token_ids for o in drafting.generate(PROMPTS, SamplingParams(temperature=0, max_tokens=24))] == outs


def test_an_unknown_kv_cache_dtype_is_refused():
    with pytest.raises(InvalidRequestError, match="kv_cache_dtype"):
        LLM("smollm2-135m", kv_cache_dtype="fp4")


def test_a_16_bit_kv_cache_of_the_other_kind_under_16_bit_activations_is_refused():
    with pytest.raises(InvalidRequestError, match="kv_cache_dtype='float16' needs dtype float32 or 'float16'"):
        LLM("smollm2-135m", dtype="bfloat16", kv_cache_dtype="float16")
