"""Greedy decoding of the packaged GGUF models is token-identical to Hugging Face transformers on
the same dequantized float32 weights: SmolLM2 (Q4_1/Q8_0) alone and (four prompts) and in one continuous batch of
twelve different lengths, and Gemma 3 270M (Q4_K/Q5_0/Q6_K/Q8_0; sliding-window layers, SentencePiece)."""

from __future__ import annotations

import pytest
import torch

from agentforge.engine import LLM, SamplingParams, resolve_model

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
TOKENS = 24


def load_reference(path):
    from transformers import AutoModelForCausalLM, GgufConfig

    return AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, quantization_config=GgufConfig(dequantize=True), dtype=torch.float32
    ).eval()


def reference_greedy(model, token_prompts: list[list[int]], tokens: int) -> list[list[int]]:
    with torch.no_grad():
        return [
            model.generate(torch.tensor([ids]), max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)[
                0, len(ids) :
            ].tolist()
            for ids in token_prompts
        ]


@pytest.fixture(scope="module")
def reference(smollm2_path):
    return load_reference(smollm2_path)


@pytest.mark.slow
def test_greedy_matches_transformers_alone_and_batched(smollm2, reference):
    token_prompts = [smollm2.tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS]
    assert len({len(p) for p in token_prompts}) > 5  # genuinely different lengths in the batch
    expected = reference_greedy(reference, token_prompts, TOKENS)
    params = SamplingParams(temperature=0, max_tokens=TOKENS, ignore_eos=True)
    alone = [smollm2.generate(ids, params)[0].outputs[0].token_ids for ids in token_prompts[:4]]
    batched = [o.outputs[0].token_ids for o in smollm2.generate(token_prompts, params)]
    assert alone == expected[:4]
    assert batched == expected


@pytest.mark.slow
def test_gemma3_greedy_matches_transformers():
    path = resolve_model("gemma3-270m")
    llm = LLM(path)
    token_prompts = [llm.tokenizer.encode(p) for p in PROMPTS[:3]]
    expected = reference_greedy(load_reference(path), token_prompts, 16)
    outputs = llm.generate(token_prompts, SamplingParams(temperature=0, max_tokens=16, ignore_eos=True))
    assert [o.outputs[0].token_ids for o in outputs] == expected
