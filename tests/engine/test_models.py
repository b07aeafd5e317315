"""Every architecture, as a tiny random-weight model, gives transformers' logits through our engine
(paged KV cache, prefill then decode steps, with and without chunked prefill)."""

from __future__ import annotations

import pytest
import torch
import transformers

from agentforge.engine import LLM, SamplingParams
from agentforge.engine.errors import InvalidRequestError

VOCAB = 256
COMMON = dict(
    vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
    max_position_embeddings=512, initializer_range=0.1, rms_norm_eps=1e-6,
)

ARCHITECTURES = {
    "llama-gqa": ("LlamaConfig", "LlamaForCausalLM", dict(num_key_value_heads=2)),
    "llama-mqa-bias-llama3-rope": (
        "LlamaConfig",
        "LlamaForCausalLM",
        dict(
            num_key_value_heads=1,
            attention_bias=True,
            tie_word_embeddings=True,
            rope_parameters={
                "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 64,
            },
        ),
    ),
    "llama4-chunked-nope-moe": (  # chunks of 16; the middle layer global without RoPE; MoE around a dense layer
        "Llama4TextConfig", "Llama4ForCausalLM",
        dict(num_key_value_heads=2, head_dim=16, intermediate_size_mlp=80, num_local_experts=4, num_experts_per_tok=2,
             no_rope_layers=[1, 0, 1], layer_types=["chunked_attention", "full_attention", "chunked_attention"],
             moe_layers=[0, 2], attention_chunk_size=16, use_qk_norm=True, attn_temperature_tuning=True,
             floor_scale=8, attn_scale=0.5,
             rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 64}),
    ),
    "llama-linear-rope": (
        "LlamaConfig", "LlamaForCausalLM",
        dict(num_key_value_heads=2, rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}),
    ),
    "qwen2-yarn-rope": (
        "Qwen2Config", "Qwen2ForCausalLM",
        dict(num_key_value_heads=2, rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                                     "original_max_position_embeddings": 32}),
    ),
    "ministral3-yarn-llama4-temperature": (  # queries scaled past every 16 positions (beta 0.1 ships; 0.5 shows)
        "Ministral3Config", "Ministral3ForCausalLM",
        dict(num_key_value_heads=2, head_dim=16, sliding_window=None,
             rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                              "original_max_position_embeddings": 16, "llama_4_scaling_beta": 0.5,
                              "beta_fast": 32.0, "beta_slow": 1.0, "mscale": 1.0, "mscale_all_dim": 1.0}),
    ),
    "mistral-sliding": ("MistralConfig", "MistralForCausalLM", dict(num_key_value_heads=2, sliding_window=8)),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(num_key_value_heads=2)),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(num_key_value_heads=2, head_dim=32)),
    "gemma3": (
        "Gemma3TextConfig",
        "Gemma3ForCausalLM",
        dict(
            num_key_value_heads=1, head_dim=32, sliding_window=8, query_pre_attn_scalar=24,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            final_logit_softcapping=30.0,
        ),
    ),
    "gemma2-softcap": (  # a low attention cap, so that capping changes every score (Gemma 2 ships 50)
        "Gemma2Config",
        "Gemma2ForCausalLM",
        dict(
            num_key_value_heads=2, head_dim=32, sliding_window=8, query_pre_attn_scalar=24,
            layer_types=["sliding_attention", "full_attention", "sliding_attention"],
            attn_logit_softcapping=0.5, final_logit_softcapping=30.0, attn_implementation="eager",
        ),
    ),
    "mixtral": (
        "MixtralConfig", "MixtralForCausalLM", dict(num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2)
    ),
    "qwen2-moe-shared-expert": (
        "Qwen2MoeConfig", "Qwen2MoeForCausalLM",
        dict(num_key_value_heads=2, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
             shared_expert_intermediate_size=48, norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[1]),
    ),
    "qwen3-moe": (
        "Qwen3MoeConfig", "Qwen3MoeForCausalLM",
        dict(num_key_value_heads=2, head_dim=32, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
             norm_topk_prob=True),
    ),
    "seed-oss": (
        "SeedOssConfig", "SeedOssForCausalLM",
        dict(num_key_value_heads=2, head_dim=32, attention_bias=True, attention_out_bias=True),
    ),
    "deepseek-v3-mla-yarn": (  # q through its low-rank path, one dense layer then MoE, 2 of 4 expert groups
        "DeepseekV3Config", "DeepseekV3ForCausalLM",
        dict(num_key_value_heads=4, q_lora_rank=24, kv_lora_rank=32, qk_nope_head_dim=16, qk_rope_head_dim=8,
             v_head_dim=12, n_routed_experts=8, n_group=4, topk_group=2, num_experts_per_tok=2, n_shared_experts=1,
             moe_intermediate_size=32, first_k_dense_replace=1, routed_scaling_factor=2.5, rope_interleave=True,
             rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0, "mscale": 1.0,
                              "mscale_all_dim": 1.0, "original_max_position_embeddings": 32,
                              "beta_fast": 32.0, "beta_slow": 1.0}),
    ),
    "hunyuan-moe": (
        "HunYuanMoEV1Config", "HunYuanMoEV1ForCausalLM",
        dict(num_key_value_heads=2, head_dim=16, num_experts=4, moe_topk=2, attention_bias=False),
    ),
    "hunyuan-dense-ntk-alpha": (
        "HunYuanDenseV1Config", "HunYuanDenseV1ForCausalLM",
        dict(num_key_value_heads=2, head_dim=16, attention_bias=False,
             rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "alpha": 50.0, "factor": 1.0}),
    ),
}


@pytest.fixture(scope="module", params=sorted(ARCHITECTURES))
def tiny_model(request, tmp_path_factory, smollm2_tokenizer):
    config_cls, model_cls, extra = ARCHITECTURES[request.param]
    torch.manual_seed(0)
    config = getattr(transformers, config_cls)(**COMMON, **extra)
    model = getattr(transformers, model_cls)(config).eval()
    for name, buffer in model.named_buffers():
        if name.endswith("e_score_correction_bias"):  # DeepSeek's load-balancing bias: learned, not zero
            buffer.uniform_(-0.5, 0.5)
    path = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(path)
    smollm2_tokenizer.save_pretrained(path)
    return path, model


@pytest.mark.parametrize("chunk", [1024, 16], ids=["one-shot-prefill", "chunked-prefill"])
def test_logits_match_transformers(tiny_model, chunk):
    path, reference = tiny_model
    llm = LLM(path, max_num_batched_tokens=chunk, block_size=8)
    torch.manual_seed(1)
    prompts = [torch.randint(0, VOCAB, (n,)).tolist() for n in (37, 5)]
    steps = 6
    outputs = llm.generate(prompts, SamplingParams(temperature=0, max_tokens=steps, ignore_eos=True, logprobs=VOCAB))
    for prompt, out in zip(prompts, outputs):
        completion = out.outputs[0]
        assert len(completion.token_ids) == steps
        ours = torch.tensor([[lp.top[t] for t in range(VOCAB)] for lp in completion.logprobs])
        with torch.no_grad():
            logits = reference(torch.tensor([prompt + completion.token_ids])).logits[0].float()
        expected = logits.log_softmax(-1)[len(prompt) - 1 : len(prompt) - 1 + steps]
        torch.testing.assert_close(ours, expected, atol=2e-4, rtol=1e-4)
        assert completion.token_ids == expected.argmax(-1).tolist()


def test_64_greedy_tokens_match_transformers_with_chunked_prefill_and_prefix_caching(tiny_model):
    """Past the sliding window (8) and the Llama 3 RoPE threshold (64): a 40-token prompt, prefilled
    in chunks of 16, then 64 greedy tokens; the same prompt again reuses the cached prefix blocks."""
    path, reference = tiny_model
    llm = LLM(path, max_num_batched_tokens=16, block_size=8, enable_prefix_caching=True)
    torch.manual_seed(2)
    prompt = torch.randint(0, VOCAB, (40,)).tolist()
    greedy = SamplingParams(temperature=0, max_tokens=64, ignore_eos=True)
    first, again = (llm.generate([prompt], greedy)[0] for _ in range(2))
    expected = list(prompt)
    with torch.no_grad():
        for _ in range(64):
            expected.append(int(reference(torch.tensor([expected])).logits[0, -1].argmax()))
    assert first.outputs[0].token_ids == expected[40:]
    assert again.outputs[0].token_ids == expected[40:] and again.usage.cached_tokens >= 32


def test_a_window_past_the_trained_one_needs_rope_scaling_and_then_matches_transformers(tmp_path, smollm2_tokenizer):
    torch.manual_seed(0)
    config = transformers.LlamaConfig(**{**COMMON, "max_position_embeddings": 48}, num_key_value_heads=2)
    transformers.LlamaForCausalLM(config).save_pretrained(tmp_path)
    smollm2_tokenizer.save_pretrained(tmp_path)
    with pytest.raises(InvalidRequestError, match="beyond the 48 tokens the model was trained on.*rope_scaling"):
        LLM(tmp_path, max_model_len=160)
    with pytest.raises(InvalidRequestError, match="factor > 1"):
        LLM(tmp_path, rope_scaling={"rope_type": "yarn", "factor": 0.5})
    scaling = {"rope_type": "yarn", "factor": 4.0}
    llm = LLM(tmp_path, max_model_len=160, rope_scaling=scaling, max_num_batched_tokens=16, block_size=8)
    scaled = transformers.LlamaConfig(**{**COMMON, "max_position_embeddings": 192}, num_key_value_heads=2,
                                      rope_parameters={"rope_theta": 10000.0, **scaling, "original_max_position_embeddings": 48})
    reference = transformers.LlamaForCausalLM.from_pretrained(tmp_path, config=scaled).eval()
    prompt = torch.randint(0, VOCAB, (40,)).tolist()
    out = llm.generate([prompt], SamplingParams(temperature=0, max_tokens=64, ignore_eos=True))[0].outputs[0]
    expected = list(prompt)
    with torch.no_grad():
        for _ in range(64):  # to position 104, past the trained 48
            expected.append(int(reference(torch.tensor([expected])).logits[0, -1].argmax()))
    assert out.token_ids == expected[40:]


def test_mla_caches_one_latent_per_token_and_layer():
    """DeepSeek's cache holds kv_lora_rank + rope numbers per token and layer, keys serving as values."""
    from agentforge.engine import models
    from agentforge.engine.model_runner import kv_bytes_per_token

    config_cls, model_cls, extra = ARCHITECTURES["deepseek-v3-mla-yarn"]
    model = models.ARCHITECTURES[model_cls](getattr(transformers, config_cls)(**COMMON, **extra))
    assert kv_bytes_per_token(model, torch.float32) == COMMON["num_hidden_layers"] * (32 + 8) * 4
