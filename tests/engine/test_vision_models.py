"""Vision-language models: a tiny random-weight SmolVLM (Idefics3) built from transformers' real
config classes answers image + text prompts with the same greedy tokens as transformers, with
chunked prefill splitting the image tokens and the prefix cache keyed by image content."""

from __future__ import annotations

import base64
import io

import pytest
import torch
from _vision import ask, data_url, picture, qwen_reference_tokens, reference_tokens
from PIL import Image

from agentforge.engine import LLM, SamplingParams
from agentforge.engine.errors import InvalidRequestError

GREEDY = SamplingParams(temperature=0, max_tokens=64, ignore_eos=True)


@pytest.fixture(scope="module")
def vlm(smolvlm):
    # chunks of 16 tokens split the 20 image tokens of the 2x2 tiles + global view across steps
    return LLM(smolvlm[0], max_num_batched_tokens=16, block_size=8, enable_prefix_caching=True)


def test_smolvlm_greedy_tokens_match_transformers_on_an_image_prompt(vlm, smolvlm):
    _, model, processor = smolvlm
    image = picture(1)
    out = vlm.chat(ask(image), GREEDY)[0]
    assert out.outputs[0].token_ids == reference_tokens(model, processor, image, "What is in the picture?", 64)


def test_the_prefix_cache_tells_images_apart(vlm, smolvlm):
    """The same image again is served from the cache; another image of the same size (the same
    placeholder tokens) is not, and gets its own answer."""
    _, model, processor = smolvlm
    first, second = picture(2), picture(3)
    vlm.chat(ask(first), GREEDY)
    again = vlm.chat(ask(first), GREEDY)[0]
    other = vlm.chat(ask(second), GREEDY)[0]
    assert again.usage.cached_tokens > 24  # past the image tokens
    image_start = next(i for i, t in enumerate(again.prompt_token_ids) if t == model.config.image_token_id)
    assert other.usage.cached_tokens <= image_start
    assert other.outputs[0].token_ids == reference_tokens(model, processor, second, "What is in the picture?", 64)
    assert other.outputs[0].token_ids != again.outputs[0].token_ids


def test_a_batch_mixes_image_and_text_only_requests(vlm, smolvlm):
    _, model, processor = smolvlm
    image = picture(4, size=(40, 30))
    outs = vlm.chat([ask(None, "Say hello."), ask(image, "Describe it."), ask(None, "Count to three.")], GREEDY)
    assert outs[0].outputs[0].token_ids == reference_tokens(model, processor, None, "Say hello.", 64)
    assert outs[1].outputs[0].token_ids == reference_tokens(model, processor, image, "Describe it.", 64)
    assert outs[2].outputs[0].token_ids == reference_tokens(model, processor, None, "Count to three.", 64)


def bad_images(tmp_path):
    png = base64.b64decode(data_url(picture(5)).split(",", 1)[1])
    huge = io.BytesIO()
    Image.new("1", (8000, 6250)).save(huge, format="PNG")  # 50 megapixels, a few kB compressed
    outside = tmp_path / "secret.png"
    outside.write_bytes(png)
    return {
        "truncated file": "data:image/png;base64," + base64.b64encode(png[: len(png) // 2]).decode(),
        "wrong type": "data:image/png;base64," + base64.b64encode(b"%PDF-1.4 not an image at all").decode(),
        "50 megapixels": "data:image/png;base64," + base64.b64encode(huge.getvalue()).decode(),
        "bad base64": "data:image/png;base64,@@@@",
        "remote URL (off by default)": "https://example.com/cat.png",
        "file outside image_dirs": str(outside),
    }


def test_bad_images_are_refused_with_a_clear_error(vlm, tmp_path):
    for what, url in bad_images(tmp_path).items():
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                 {"type": "text", "text": "?"}]}]
        with pytest.raises(InvalidRequestError):
            vlm.chat(messages, GREEDY)
        assert not vlm.engine.has_unfinished_requests(), what
    assert vlm.chat(ask(picture(6)), SamplingParams(temperature=0, max_tokens=4))[0].outputs[0].token_ids


def test_images_under_image_dirs_are_read_from_disk(smolvlm, tmp_path):
    path, model, processor = smolvlm
    image = picture(7)
    image.save(tmp_path / "cat.png")
    llm = LLM(path, max_num_batched_tokens=64, image_dirs=[str(tmp_path)])
    for url in (str(tmp_path / "cat.png"), f"file://{tmp_path / 'cat.png'}"):
        messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                 {"type": "text", "text": "What is in the picture?"}]}]
        out = llm.chat(messages, SamplingParams(temperature=0, max_tokens=8, ignore_eos=True))[0]
        assert out.outputs[0].token_ids == reference_tokens(model, processor, image, "What is in the picture?", 8)


def test_several_images_in_one_conversation_and_several_completions(vlm, smolvlm):
    """Two images of different shapes in one turn keep their order; n=2 completions share the
    image prompt (the second joins through the prefix cache) and both match transformers."""
    _, model, processor = smolvlm
    wide, tall = picture(8, size=(20, 60)), picture(9, size=(60, 20))
    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": data_url(wide)}}, {"type": "text", "text": "and"},
        {"type": "image_url", "image_url": {"url": data_url(tall)}}, {"type": "text", "text": "differ how?"}]}]
    out = vlm.chat(messages, SamplingParams(temperature=0, max_tokens=16, ignore_eos=True, n=2))[0]
    content = [{"type": "image"}, {"type": "text", "text": "and"}, {"type": "image"}, {"type": "text", "text": "differ how?"}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    inputs = processor(text=[text], images=[[wide, tall]], add_special_tokens=False, return_tensors="pt")
    ids, expected = inputs["input_ids"], []
    with torch.no_grad():
        for _ in range(16):
            expected.append(int(model(input_ids=ids, pixel_values=inputs["pixel_values"],
                                      pixel_attention_mask=inputs["pixel_attention_mask"]).logits[0, -1].argmax()))
            ids = torch.cat([ids, torch.tensor([[expected[-1]]])], dim=1)
    assert [c.token_ids for c in out.outputs] == [expected, expected]



# --- Qwen2.5-VL and Qwen3-VL: M-RoPE positions that are not token indices; windowed vision attention
# (2.5), DeepStack and interleaved M-RoPE (3) -----------------------------------------------------------


def _qwen_chat(parts: list) -> tuple[list[dict], list[dict], list]:
    """(OpenAI messages, the template's content, the images) of one user turn of text and images."""
    content, images, template = [], [], []
    for part in parts:
        if isinstance(part, str):
            content.append({"type": "text", "text": part})
            template.append({"type": "text", "text": part})
        else:
            content.append({"type": "image_url", "image_url": {"url": data_url(part)}})
            template.append({"type": "image"})
            images.append(part)
    return [{"role": "user", "content": content}], template, images


def test_qwen_vl_greedy_tokens_match_transformers_with_chunks_and_the_prefix_cache(qwen_vl):
    path, model, images, tokenizer = qwen_vl
    llm = LLM(path, max_num_batched_tokens=16, block_size=8, enable_prefix_caching=True)
    messages, content, pictures = _qwen_chat([picture(12, size=(50, 70)), "What is in the picture?"])
    expected = qwen_reference_tokens(model, images, tokenizer, content, pictures, 64)
    first = llm.chat(messages, GREEDY)[0]
    again = llm.chat(messages, GREEDY)[0]
    assert first.outputs[0].token_ids == expected
    assert again.usage.cached_tokens > 16 and again.outputs[0].token_ids == expected
    other_messages, other_content, other = _qwen_chat([picture(13, size=(50, 70)), "What is in the picture?"])
    assert llm.chat(other_messages, GREEDY)[0].outputs[0].token_ids == qwen_reference_tokens(
        model, images, tokenizer, other_content, other, 64)


def test_qwen_vl_batches_two_image_turns_with_text_only_requests(qwen_vl):
    path, model, images, tokenizer = qwen_vl
    llm = LLM(path, max_num_batched_tokens=32, block_size=8)
    chats = [_qwen_chat(["Say hello."]), _qwen_chat([picture(14, size=(30, 60)), "and", picture(15, size=(60, 30)), "differ?"]),
             _qwen_chat(["Count to three."])]
    params = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)
    outs = llm.chat([messages for messages, _, _ in chats], params)
    for out, (_, content, pictures) in zip(outs, chats):
        assert out.outputs[0].token_ids == qwen_reference_tokens(model, images, tokenizer, content, pictures, 24)
