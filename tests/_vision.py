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
