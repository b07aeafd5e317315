"""Greedy SmolLM2 (the shipped GGUF) is token-identical to Hugging Face transformers on the same
dequantized float32 weights, alone and in one continuous batch of different lengths."""

from __future__ import annotations

import pytest
import torch

from agentforge.engine import SamplingParams

PROMPTS = [
    "The quick brown fox",
    "def fibonacci(n):",
    "Once upon a time in a land far away,",
    "The three primary colors are",
    "Translate to French: Good morning, how are you?",
    "import numpy as np\nx = np.arange(10)\n",
    "Q: What is 12 times 12?\nA:",
    "In 1969, the first humans",
    "A haiku about autumn leaves:\n",
    "<|im_start|>user\nGive me a tip for learning Python.<|im_end|>\n<|im_start|>assistant\n",
    "Photosynthesis is the process by which plants",
    "SELECT name, age FROM users WHERE",
]
TOKENS = 32


@pytest.fixture(scope="module")
def reference(smollm2_path):
    from transformers import AutoModelForCausalLM, GgufConfig

    return AutoModelForCausalLM.from_pretrained(
        str(smollm2_path.parent),
        gguf_file=smollm2_path.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,
    ).eval()


@pytest.mark.slow
def test_greedy_matches_transformers_alone_and_batched(smollm2, reference):
    token_prompts = [smollm2.tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS]
    assert len({len(p) for p in token_prompts}) > 5  # genuinely different lengths in the batch
    expected = []
    with torch.no_grad():
        for ids in token_prompts:
            out = reference.generate(torch.tensor([ids]), max_new_tokens=TOKENS, min_new_tokens=TOKENS, do_sample=False)
            expected.append(out[0, len(ids) :].tolist())
    params = SamplingParams(temperature=0, max_tokens=TOKENS, ignore_eos=True)
    alone = [smollm2.generate(ids, params)[0].outputs[0].token_ids for ids in token_prompts]
    batched = [o.outputs[0].token_ids for o in smollm2.generate(token_prompts, params)]
    assert alone == expected
    assert batched == expected
