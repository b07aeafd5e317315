"""Training rows are rendered exactly as the engine renders requests, loss on assistant tokens only."""

from agentforge.engine import LLM
from agentforge.finetune import Conversation
from agentforge.finetune._render import Renderer

TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CALL = {"id": "c0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}


def test_the_prompt_is_the_engines_and_only_replies_carry_loss(tiny_llama_dir, smollm2_tokenizer):
    row = Conversation([{"role": "user", "content": "Weather in Oslo?"},
                        {"role": "assistant", "content": None, "tool_calls": [CALL]},
                        {"role": "tool", "tool_call_id": "c0", "content": "{\"temp\": 3}"},
                        {"role": "assistant", "content": "It is 3 degrees in Oslo."}], [TOOL])
    encoded = Renderer(smollm2_tokenizer).conversation(row, 4096)
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    engine = LLM(str(tiny_llama_dir), kv_cache_bytes=1 << 24).engine
    prompt = engine.make_chat_request(row.messages[:1], tools=[TOOL]).prompt_token_ids
    assert ids[: len(prompt)] == prompt and not any(mask[: len(prompt)])
    learned = smollm2_tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert learned == ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>'
                       'It is 3 degrees in Oslo.<|im_end|>')
    follow_up = engine.make_chat_request(row.messages[:3], tools=[TOOL]).prompt_token_ids
    assert ids[: len(follow_up)] == follow_up


def test_rows_are_cut_to_max_length(smollm2_tokenizer):
    row = Conversation([{"role": "user", "content": "word " * 50}, {"role": "assistant", "content": "ok"}])
    renderer = Renderer(smollm2_tokenizer)
    assert len(renderer.conversation(row, 200)["input_ids"]) <= 200
    try:
        renderer.conversation(row, 20)
    except ValueError as exc:
        assert "max_length" in str(exc)
    else:
        raise AssertionError("a row whose reply is cut off must be refused")
