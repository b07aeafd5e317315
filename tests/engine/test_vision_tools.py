"""Images and tools in one chat on a vision model: the tool prompt and the image both reach the
model (greedy tokens equal transformers' on the same prompt and pixels), calls under `required`
parse and validate, and a conversation goes on after a tool result with its image still in it."""

from __future__ import annotations

import json

import pytest
import torch
from _vision import ask, data_url, picture

from agentforge.engine import LLM, SamplingParams

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def vlm(smolvlm):
    return LLM(smolvlm[0], max_num_batched_tokens=16, block_size=8)


def transformers_tokens(model, processor, prompt_ids: list[int], image, steps: int) -> list[int]:
    """transformers' greedy continuation of exactly `prompt_ids` with `image`'s pixels, special
    tokens left out as the engine's free-text grammar leaves them out beside tools (a random
    model likes them)."""
    pixels = processor.image_processor(images=[[image]], return_tensors="pt")
    special = [i for i, token in processor.tokenizer.added_tokens_decoder.items() if token.special]
    ids, out = torch.tensor([prompt_ids]), []
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=ids, pixel_values=pixels["pixel_values"],
                           pixel_attention_mask=pixels["pixel_attention_mask"]).logits[0, -1]
            logits[special] = -torch.inf
            out.append(int(logits.argmax()))
            ids = torch.cat([ids, torch.tensor([[out[-1]]])], dim=1)
    return out


def test_an_image_and_the_tool_prompt_both_reach_the_model(vlm, smolvlm):
    _, model, processor = smolvlm
    image = picture(11)
    out = vlm.chat(ask(image, "What is the weather where this was taken?"),
                   SamplingParams(temperature=0, max_tokens=16, ignore_eos=True), tools=[WEATHER])[0]
    prompt = vlm.engine.tokenizer.decode(out.prompt_token_ids)
    assert "get_weather" in prompt and "What is the weather where this was taken?" in prompt
    without_tools = vlm.chat(ask(image, "What is the weather where this was taken?"), SamplingParams(max_tokens=1))[0]
    image_token = model.config.image_token_id
    assert out.prompt_token_ids.count(image_token) == without_tools.prompt_token_ids.count(image_token) > 0
    # this random model answers in text (its 24th token would be a byte the grammar refuses: text stays UTF-8)
    assert not out.outputs[0].tool_calls
    assert out.outputs[0].token_ids == transformers_tokens(model, processor, out.prompt_token_ids, image, 16)


def test_calls_under_required_are_valid_and_the_chat_goes_on_after_the_result(vlm):
    image = picture(12)
    messages = ask(image, "Weather in Paris?")
    called = vlm.chat(messages, SamplingParams(temperature=1.0, seed=3, max_tokens=64), tools=[WEATHER],
                      tool_choice="required")[0].outputs[0]
    [call] = called.tool_calls
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments)["city"], str)
    history = [*messages, {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
               {"role": "tool", "tool_call_id": call.id, "content": "18 C, clear"},
               {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(picture(13))}},
                                            {"type": "text", "text": "And here?"}]}]
    after = vlm.chat(history, SamplingParams(temperature=0, max_tokens=8), tools=[WEATHER], tool_choice="auto")[0]
    prompt = vlm.engine.tokenizer.decode(after.prompt_token_ids)
    assert "18 C, clear" in prompt and prompt.count("<global-img>") == 2  # both images, the result between them
    assert after.outputs[0].finish_reason in ("stop", "length", "tool_calls")


def test_qwen_vl_calls_a_tool_about_an_image(qwen_vl):
    path, model, _, _ = qwen_vl
    llm = LLM(path, max_num_batched_tokens=16, block_size=8)
    out = llm.chat(ask(picture(14, size=(40, 30)), "Weather in Oslo?"), SamplingParams(temperature=1.0, seed=5,
                   max_tokens=64), tools=[WEATHER], tool_choice="required")[0]
    [call] = out.outputs[0].tool_calls
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments)["city"], str)
    assert out.prompt_token_ids.count(model.config.image_token_id) > 0
