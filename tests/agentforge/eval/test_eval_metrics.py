"""Deterministic metrics against hand-computed values, and the dataset loader's errors."""

from __future__ import annotations

import json

import pytest

from agentforge.eval import (
    DatasetError,
    bleu,
    chrf,
    edit_distance,
    embedding_similarity,
    exact_match,
    fuzzy_match,
    load_dataset,
    normalized_exact_match,
    token_f1,
    tool_calls_match,
)
from agentforge.eval.metrics import normalize


def test_exact_and_normalized():
    assert normalize("The  Cat, sat!") == "cat sat"
    assert exact_match("Paris", "Paris") == 1.0 and exact_match("Paris", "paris") == 0.0
    assert normalized_exact_match("The Eiffel tower.", "eiffel Tower") == 1.0
    assert normalized_exact_match("a tower", "towers") == 0.0


def test_token_f1_by_hand():
    # prediction -> [cat, sat, on, mat], reference -> [cat, on, mat]: P = 3/4, R = 1
    assert token_f1("The cat sat on the mat.", "cat on mat") == pytest.approx(2 * 0.75 / 1.75)
    assert token_f1("dog", "cat") == 0.0 and token_f1("", "") == 1.0 and token_f1("", "cat") == 0.0


def test_fuzzy_and_edit_distance_by_hand():
    # kitten / sitting: longest common subsequence 4 (i, t, t, n) -> Indel distance 6 + 7 - 2*4 = 5
    assert fuzzy_match("kitten", "sitting") == pytest.approx(1 - 5 / 13)
    assert edit_distance("kitten", "sitting") == 3.0  # k->s, e->i, +g
    assert fuzzy_match("Same text!", "same text") == 1.0


def test_bleu_and_chrf():
    assert bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    assert bleu("xyz", "the cat sat on the mat") == 0.0
    assert chrf("the cat", "the cat") == pytest.approx(1.0) and chrf("qqq", "the cat") == 0.0
    assert 0 < bleu("the cat is on the mat", ["the cat sat on the mat", "a cat is on the mat"]) < 1


def test_tool_call_trajectories():
    calls = [{"name": "search", "args": {"q": "x"}}, {"name": "add", "args": {"a": 1, "b": 2}}]
    assert tool_calls_match(calls, [{"name": "search"}, {"name": "add", "args": {"a": 1, "b": 2}}]) == 1.0
    assert tool_calls_match(calls, [{"name": "add"}, {"name": "search"}]) == 0.0
    assert tool_calls_match(calls, [{"name": "add"}, {"name": "search"}], order=False) == 1.0
    assert tool_calls_match(calls, [{"name": "search"}]) == 0.0
    assert tool_calls_match(calls, [{"name": "search", "args": {"q": "y"}}, {"name": "add"}], order=False) == 0.0


def test_embedding_similarity():
    assert embedding_similarity("a dog runs", "a dog runs") == pytest.approx(1.0, abs=1e-5)
    assert embedding_similarity("a dog runs in the park", "a puppy is running outside") > \
        embedding_similarity("a dog runs in the park", "quarterly tax filing deadline")


def test_dataset_loader_names_bad_lines(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"input": "q", "reference": "a"}) + "\n\n" + json.dumps({"input": {"x": 1}}) + "\n")
    assert [e.input for e in load_dataset(good)] == ["q", {"x": 1}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "ok"}\nnot json\n{"reference": "no input"}\n{"input": "x", "extra": 1}\n')
    with pytest.raises(DatasetError) as error:
        load_dataset(bad)
    message = str(error.value)
    assert "line 2: invalid JSON" in message and "line 3: needs an object with an 'input'" in message
    assert "line 4: unknown keys ['extra']" in message and "line 1" not in message
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DatasetError, match="no rows"):
        load_dataset(tmp_path / "empty.jsonl")
