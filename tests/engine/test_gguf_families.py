"""GGUF files as llama.cpp's converter writes them, for the families added after Llama/Qwen/Gemma 3:
each fixture in tests/engine/data/gguf/ is a tiny random-weight Hugging Face model and the GGUF file
`convert_hf_to_gguf` made from it (`_make_fixtures.py` regenerates them). Loaded from the GGUF file,
the engine gives the Hugging Face model's greedy tokens (transformers on the folder), with chunked
prefill and the prefix cache, past the sliding window."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from agentforge.engine import LLM, SamplingParams
from agentforge.engine.loader import load_model

FIXTURES = Path(__file__).parent / "data" / "gguf"
FAMILIES = {"llama3": "LlamaForCausalLM", "gemma2": "Gemma2ForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
            "seed_oss": "SeedOssForCausalLM", "llama4": "Llama4ForCausalLM",
            "deepseek_v3": "DeepseekV3ForCausalLM", "hunyuan_dense": "HunYuanDenseV1ForCausalLM",
            "hunyuan_moe": "HunYuanMoEV1ForCausalLM", "ministral3": "Ministral3ForCausalLM"}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_converted_gguf_runs_like_its_hugging_face_model(family):
    folder = FIXTURES / family
    loaded = load_model(folder / "model.gguf")
    assert loaded.config.architectures == [FAMILIES[family]]
    text = "The engine runs decoder-only models in plain PyTorch."
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    assert loaded.tokenizer.encode(text, add_special_tokens=False) == hf_tokenizer.encode(text, add_special_tokens=False)

    reference = transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    torch.manual_seed(1)  # three prompts: a tiny random model soon repeats one token, and one prompt can hide a bug
    prompts = [torch.randint(1, reference.config.vocab_size, (20,)).tolist() for _ in range(3)]
    expected = []
    with torch.no_grad():
        for prompt in prompts:
            ids = list(prompt)
            for _ in range(32):
                ids.append(int(reference(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
            expected.append(ids[20:])
    llm = LLM(folder / "model.gguf", max_num_batched_tokens=16, block_size=8, enable_prefix_caching=True)
    params = SamplingParams(temperature=0, max_tokens=32, ignore_eos=True)
    first, again = llm.generate(prompts, params), llm.generate(prompts, params)
    assert [o.outputs[0].token_ids for o in first] == expected
    assert all(o.usage.cached_tokens > 0 for o in again) and [o.outputs[0].token_ids for o in again] == expected
