"""Reading training data: the formats users have, bad rows skipped with their line numbers."""

import json

import pytest

from agentforge.finetune import Conversation, DatasetError, Feedback, Preference, Prompt, read_dataset


def write(tmp_path, rows, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_openai_rows_keep_tools_and_calls(tmp_path):
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}}}}}
    row = {"messages": [{"role": "user", "content": "Weather in Oslo?"},
                        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
                            "name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]}], "tools": [tool]}
    data = read_dataset(write(tmp_path, [row]))
    assert data.format == "openai"
    (conversation,) = data.rows
    assert isinstance(conversation, Conversation) and conversation.line == 1
    assert conversation.tools[0]["function"]["name"] == "get_weather"
    assert conversation.messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_sharegpt_with_function_calls_and_observations(tmp_path):
    row = {"system": "Be brief.", "tools": json.dumps([{"name": "lookup", "description": "Look up",
                                                         "parameters": {"type": "object", "properties": {}}}]),
           "conversations": [{"from": "human", "value": "Find x"},
                             {"from": "function_call", "value": json.dumps({"name": "lookup", "arguments": {"q": "x"}})},
                             {"from": "observation", "value": "x = 4"},
                             {"from": "gpt", "value": "x is 4."}]}
    (conversation,) = read_dataset(write(tmp_path, [row])).rows
    roles = [m["role"] for m in conversation.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    call = conversation.messages[2]["tool_calls"][0]
    assert call["function"]["name"] == "lookup" and json.loads(call["function"]["arguments"]) == {"q": "x"}
    assert conversation.messages[3]["tool_call_id"] == call["id"]
    assert conversation.tools[0]["function"]["name"] == "lookup"


def test_alpaca_with_input_and_history(tmp_path):
    row = {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "You translate.",
           "history": [["Translate merci", "thank you"]]}
    (conversation,) = read_dataset(write(tmp_path, [row])).rows
    assert [m["content"] for m in conversation.messages] == [
        "You translate.", "Translate merci", "thank you", "Translate\nbonjour", "hello"]


def test_preference_and_prompt_rows(tmp_path):
    pairs = read_dataset(write(tmp_path, [{"prompt": "2+2?", "chosen": "4", "rejected": "5"}]))
    (pair,) = pairs.rows
    assert isinstance(pair, Preference) and pair.chosen == [{"role": "assistant", "content": "4"}]
    prompts = read_dataset(write(tmp_path, [{"prompt": "2+2?", "answer": 4}], "rl.jsonl"))
    (prompt,) = prompts.rows
    assert isinstance(prompt, Prompt) and prompt.extra == {"answer": 4}


def test_feedback_rows_are_single_replies_judged_good_or_bad(tmp_path):
    data = read_dataset(write(tmp_path, [{"prompt": "2+2?", "completion": "4", "label": True},
                                         {"prompt": "2+2?", "completion": "5", "label": False},
                                         {"prompt": "2+2?", "completion": "5", "label": "bad"},
                                         {"prompt": "   ", "completion": "5", "label": False}]))
    assert data.format == "feedback" and [r.label for r in data.rows] == [True, False]
    assert isinstance(data.rows[0], Feedback) and data.rows[0].completion == [{"role": "assistant", "content": "4"}]
    assert [s.line for s in data.skipped] == [3, 4] and "label must be true" in data.skipped[0].reason
    assert "non-empty string" in data.skipped[1].reason


def test_bad_rows_are_skipped_and_named_by_line(tmp_path):
    rows = [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            "{not json",
            {"messages": [{"role": "user", "content": "no answer"}]},
            {"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]},
            "",
            {"messages": [{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}]
    data = read_dataset(write(tmp_path, rows))
    assert [r.line for r in data.rows] == [1, 6]
    assert [s.line for s in data.skipped] == [2, 3, 4]
    assert "no assistant turn" in data.skipped[1].reason and "role" in data.skipped[2].reason
    assert "line 2" in data.summary() and "3 skipped" in data.summary()


def test_a_file_without_valid_rows_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="no valid rows.*line 1.*line 2"):
        read_dataset(write(tmp_path, ["[1, 2]", {"messages": []}]))
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset(tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match="unknown dataset format"):
        read_dataset(write(tmp_path, [{"prompt": "x"}]), format="csv")
