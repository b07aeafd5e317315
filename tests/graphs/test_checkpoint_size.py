"""Acceptance: a 200-turn conversation's checkpoints are at least 10x smaller than LangGraph's
SQLite checkpointer's on the same graph (bench/checkpoint_size.py measures and prints it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def test_a_200_turn_conversation_checkpoints_10x_smaller_than_langgraph():
    pytest.importorskip("langgraph.checkpoint.sqlite")  # the peer measured against
    path = Path(__file__).parents[2] / "bench" / "checkpoint_size.py"
    spec = importlib.util.spec_from_file_location("checkpoint_size", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.measure(200)
    print(result)
    assert result["ratio"] >= 10, result
