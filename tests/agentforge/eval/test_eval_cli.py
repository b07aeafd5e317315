"""`agentforge eval DATASET --graph module:graph`: scores, a JSON run, a paired comparison, clear errors."""

from __future__ import annotations

import json

from agentforge.cli import main

GRAPH = '''
from agentforge.graphs import START, StateGraph, MessagesState

ANSWERS = {{"capital of France?": "{france}", "capital of Japan?": "Tokyo"}}

def answer(state):
    return {{"messages": [{{"role": "assistant", "content": ANSWERS[state["messages"][-1].content]}}]}}

graph = StateGraph(MessagesState).add_node("answer", answer).add_edge(START, "answer").compile()
'''


def test_eval_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "good_bot.py").write_text(GRAPH.format(france="Paris"))
    (tmp_path / "bad_bot.py").write_text(GRAPH.format(france="Lyon"))
    data = tmp_path / "qa.jsonl"
    data.write_text("".join(json.dumps({"input": q, "reference": a}) + "\n"
                            for q, a in [("capital of France?", "Paris"), ("capital of Japan?", "tokyo")]))
    assert main(["eval", str(data), "--graph", "bad_bot:graph", "--out", str(tmp_path / "bad.json")]) == 0
    out = capsys.readouterr().out
    assert "normalized_exact_match   0.500" in out and "token_f1" in out
    assert main(["eval", str(data), "--graph", "good_bot:graph", "--compare", str(tmp_path / "bad.json")]) == 0
    assert "normalized_exact_match   +0.500" in capsys.readouterr().out
    assert json.loads((tmp_path / "bad.json").read_text())["summary"]["normalized_exact_match"]["mean"] == 0.5

    data.write_text("not json\n")
    assert main(["eval", str(data), "--graph", "good_bot:graph"]) == 2
    assert "line 1: invalid JSON" in capsys.readouterr().err
