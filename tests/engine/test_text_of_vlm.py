"""Vision-language checkpoints whose language model the engine runs (Gemma 3 4B+, Mistral 3, Llama 4
ship as ...ForConditionalGeneration) load as that text model: the same greedy tokens as the whole
transformers model on a text prompt, the vision weights left unread."""

from __future__ import annotations

import pytest
import torch
import transformers

from agentforge.engine import LLM, SamplingParams

TEXT = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=512, initializer_range=0.1)
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)

CHECKPOINTS = {
    "mistral3": lambda: transformers.Mistral3Config(
        text_config=transformers.Ministral3Config(
            **TEXT, rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                     "original_max_position_embeddings": 16, "llama_4_scaling_beta": 0.1}),
        vision_config=transformers.PixtralVisionConfig(**VISION, image_size=64, patch_size=16, head_dim=16),
        image_token_index=10),
    "gemma3": lambda: transformers.Gemma3Config(
        text_config=transformers.Gemma3TextConfig(**TEXT, sliding_window=8, query_pre_attn_scalar=16,
                                                  layer_types=["sliding_attention", "full_attention"]),
        vision_config=transformers.SiglipVisionConfig(**VISION, image_size=32, patch_size=8),
        mm_tokens_per_image=4, image_token_index=11, boi_token_index=12, eoi_token_index=13),
}


@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_a_vision_language_checkpoint_runs_as_its_text_model(name, tmp_path, smollm2_tokenizer):
    torch.manual_seed(0)
    config = CHECKPOINTS[name]()
    reference = transformers.AutoModelForImageTextToText.from_config(config).eval()
    reference.save_pretrained(tmp_path)
    smollm2_tokenizer.save_pretrained(tmp_path)
    llm = LLM(tmp_path, max_num_batched_tokens=16, block_size=8, enable_prefix_caching=True)
    prompt = torch.randint(20, 256, (24,)).tolist()  # clear of the image tokens
    out = llm.generate([prompt], SamplingParams(temperature=0, max_tokens=24, ignore_eos=True))[0]
    expected = list(prompt)
    with torch.no_grad():
        for _ in range(24):
            expected.append(int(reference(input_ids=torch.tensor([expected])).logits[0, -1].argmax()))
    assert out.outputs[0].token_ids == expected[24:]
