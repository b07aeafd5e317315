"""The generated tool-calling rows: well-formed, calls that fit the offered tools' schemas, and
rows that teach not to call (including a task offered only functions of another kind)."""

from __future__ import annotations

import json
import re

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


def test_no_call_rows_include_tasks_for_functions_that_are_not_offered():
    rows = tool_call_rows(400, seed=2)
    silent = [r for r in rows if not any(m.get("tool_calls") for m in r["messages"])]
    assert 0.2 < len(silent) / len(rows) < 0.45
    # a question shaped like a function's own request, with that function absent from the tools
    from agentforge.finetune.tool_data import _FUNCTIONS

    def pattern(template: str) -> re.Pattern:
        return re.compile(re.sub(r"\\{\w+\\}", ".+", re.escape(template)))

    asks = {fn.spec["function"]["name"]: [pattern(t) for t in fn.ask] for fn in _FUNCTIONS}
    mismatched = [r for r in silent if any(
        name not in {t["function"]["name"] for t in r["tools"]}
        and any(p.fullmatch(r["messages"][0]["content"]) for p in patterns)
        for name, patterns in asks.items())]
    assert len(mismatched) >= 0.05 * len(rows)


def test_rows_read_back_as_a_training_set(tmp_path):
    path = write_tool_call_data(tmp_path / "calls.jsonl", 40, seed=0)
    assert len(read_dataset(path).rows) == 40
    assert tool_call_rows(5, seed=3) == tool_call_rows(5, seed=3)  # a seed fixes the data
    with pytest.raises(ValueError):
        tool_call_rows(0)
