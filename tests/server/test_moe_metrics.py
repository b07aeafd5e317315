"""A mixture-of-experts model served: `/metrics` counts the tokens routed to each expert of each
layer, and the counts add up to what the engine computed."""

from __future__ import annotations

import httpx
import torch
import transformers

from agentforge.engine import AsyncLLM
from agentforge.server import create_app


def test_expert_load_reaches_metrics(tmp_path, smollm2_tokenizer, serve_app):
    torch.manual_seed(0)
    config = transformers.Qwen3MoeConfig(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=4,
                                         num_experts_per_tok=2, moe_intermediate_size=32, max_position_embeddings=512)
    transformers.Qwen3MoeForCausalLM(config).save_pretrained(tmp_path)
    smollm2_tokenizer.save_pretrained(tmp_path)
    llm = AsyncLLM(tmp_path)
    try:
        url = serve_app(create_app(llm, "tiny-moe"))
        reply = httpx.post(f"{url}/v1/completions", json={"model": "tiny-moe", "prompt": [5, 17, 42, 99, 7],
                                                          "max_tokens": 5, "temperature": 0, "ignore_eos": True},
                           timeout=120).json()
        computed = reply["usage"]["prompt_tokens"] + reply["usage"]["completion_tokens"] - 1  # the last is never fed
        load = llm.engine.expert_load()
        assert sorted(load) == [0, 1] and all(sum(counts) == 2 * computed for counts in load.values())
        metrics = httpx.get(f"{url}/metrics").text
        for layer, counts in load.items():
            for expert, count in enumerate(counts):
                assert f'agentforge_moe_expert_tokens_total{{expert="{expert}",layer="{layer}"}} {float(count)}' in metrics
    finally:
        llm.shutdown()
