"""The generated tool-calling rows: well-formed, calls that fit the offered tools' schemas, and
rows that teach not to call."""

from __future__ import annotations

import json

import jsonschema
import pytest

from agentforge.finetune.data import read_dataset
from agentforge.finetune.tool_data import tool_call_rows, write_tool_call_data


def test_every_call_fits_an_offered_tool_and_its_schema():
    rows = tool_call_rows(300, seed=1)
    calls = 0
    for row in rows:
        offered = {t["function"]["name"]: t["function"]["parameters"] for t in row["tools"]}
        for message in row["messages"]:
            for call in message.get("tool_calls") or ():
                name, arguments = call["function"]["name"], json.loads(call["function"]["arguments"])
                assert name in offered
                jsonschema.validate(arguments, offered[name])
                calls += 1
    assert calls > 200


def test_a_quarter_of_the_rows_teach_not_to_call():
    rows = tool_call_rows(400, seed=2)
    silent = [r for r in rows if not any(m.get("tool_calls") for m in r["messages"])]
    assert 0.15 < len(silent) / len(rows) < 0.4
    assert all(r["tools"] and r["messages"][-1]["role"] == "assistant" for r in silent)  # tools offered, not used


def test_rows_read_back_as_a_training_set(tmp_path):
    path = write_tool_call_data(tmp_path / "calls.jsonl", 40, seed=0)
    assert len(read_dataset(path).rows) == 40
    assert tool_call_rows(5, seed=3) == tool_call_rows(5, seed=3)  # a seed fixes the data
    with pytest.raises(ValueError):
        tool_call_rows(0)
