"""A tiny random-weight SmolVLM (Idefics3) from transformers' real config classes, the images
and chats the vision tests send it, and transformers' own greedy answer to compare with."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import torch
import transformers
from PIL import Image

# SmolVLM's chat template (content is always a list of text and image parts)
SMOLVLM_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")
IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>",
                *(f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7))]


def build_smolvlm(path: Path, text_tokenizer):
    """A tiny random SmolVLM saved in `path`, as (path, transformers model, processor): 2 vision and
    2 text layers; a tile is 32x32 pixels of 8x8 patches, 4 image tokens after the pixel shuffle;
    images up to 64 pixels split in 2x2 tiles."""
    from transformers.models.idefics3 import Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    text_tokenizer.save_pretrained(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    tokenizer.add_special_tokens({"additional_special_tokens": IMAGE_TOKENS})
    torch.manual_seed(0)
    config = transformers.Idefics3Config(
        text_config=transformers.LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, initializer_range=0.1),
        vision_config=transformers.Idefics3VisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
            patch_size=8, initializer_range=0.1),
        scale_factor=2, image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    model = transformers.Idefics3ForConditionalGeneration(config).eval()
    processor = Idefics3Processor(Idefics3ImageProcessorPil(size={"longest_edge": 64}, max_image_size={"longest_edge": 32}),
                                  tokenizer, image_seq_len=4, chat_template=SMOLVLM_TEMPLATE)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path, model, processor


def picture(seed: int, size=(50, 70)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8))


def data_url(image: Image.Image, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode()


def ask(image: Image.Image | None, question: str = "What is in the picture?") -> list[dict]:
    parts = [{"type": "image_url", "image_url": {"url": data_url(image)}}] if image is not None else []
    return [{"role": "user", "content": [*parts, {"type": "text", "text": question}]}]


def reference_tokens(model, processor, image: Image.Image | None, question: str, steps: int) -> list[int]:
    """transformers' greedy continuation of the same chat (the whole sequence re-run every step)."""
    content = ([{"type": "image"}] if image is not None else []) + [{"type": "text", "text": question}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    inputs = processor(text=[text], images=[[image]] if image is not None else None, add_special_tokens=False,
                       return_tensors="pt")
    ids = inputs["input_ids"]
    extra = {k: v for k, v in inputs.items() if k in ("pixel_values", "pixel_attention_mask")}
    out = []
    with torch.no_grad():
        for _ in range(steps):
            token = int(model(input_ids=ids, **extra).logits[0, -1].argmax())
            out.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return out


# Qwen2-VL's chat template, reduced to what the tests send (text and image parts)
QWEN_VL_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def build_qwen_vl(path: Path, text_tokenizer, version: str = "2.5"):
    """A tiny random Qwen2.5-VL or Qwen3-VL saved in `path`, as (path, transformers model, image
    processor, tokenizer): 8-pixel patches merged 2x2, M-RoPE sections (2, 3, 3) over a 16-wide head.
    2.5: windows of 2x2 merge groups in block 0, full attention in block 1. 3: learned positions on a
    4x4 grid resampled to each image, DeepStack features from blocks 0 and 1, interleaved M-RoPE."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    text_tokenizer.save_pretrained(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                                                                "<|video_pad|>"]})
    tokenizer.chat_template = QWEN_VL_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>")}
    torch.manual_seed(0)
    text = dict(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id, bos_token_id=None, hidden_size=64,
                intermediate_size=96, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                max_position_embeddings=1024, initializer_range=0.1,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
    vision = dict(depth=3, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, patch_size=8,
                  spatial_merge_size=2, temporal_patch_size=2, initializer_range=0.1)
    tokens = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                  vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    if version == "2.5":
        config = transformers.Qwen2_5_VLConfig(text_config=text, vision_config={**vision, "window_size": 32,
                                                                               "fullatt_block_indexes": [1]}, **tokens)
        model = transformers.Qwen2_5_VLForConditionalGeneration(config).eval()
    else:
        text["rope_parameters"]["mrope_interleaved"] = True
        config = transformers.Qwen3VLConfig(text_config=text, vision_config={**vision, "num_position_embeddings": 16,
                                                                            "deepstack_visual_indexes": [0, 1]}, **tokens)
        model = transformers.Qwen3VLForConditionalGeneration(config).eval()
    images = Qwen2VLImageProcessorPil(min_pixels=16 * 16, max_pixels=64 * 80, patch_size=8, merge_size=2,
                                      temporal_patch_size=2)
    model.save_pretrained(path)
    images.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path, model, images, tokenizer


def qwen_reference_tokens(model, images, tokenizer, content: list[dict], pictures: list, steps: int) -> list[int]:
    """transformers' greedy continuation of a Qwen2.5-VL / Qwen3-VL chat: each image placeholder repeated once
    per merged patch group (what Qwen2_5_VLProcessor writes), the whole sequence re-run every step."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)
    extra = {}
    if pictures:
        out = images(images=pictures, return_tensors="pt")
        pieces = text.split("<|image_pad|>")
        text = pieces[0] + "".join("<|image_pad|>" * (int(g.prod()) // 4) + p for g, p in zip(out["image_grid_thw"], pieces[1:]))
        extra = {"pixel_values": out["pixel_values"], "image_grid_thw": out["image_grid_thw"]}
    ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
    result = []
    with torch.no_grad():
        for _ in range(steps):
            types = (ids == model.config.image_token_id).int()
            token = int(model(input_ids=ids, mm_token_type_ids=types, **extra).logits[0, -1].argmax())
            result.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    return result
