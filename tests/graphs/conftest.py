"""Each conformance program runs on our runtime and on the real `langgraph` (differential tests)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


def _ours() -> SimpleNamespace:
    from agentforge import graphs

    return SimpleNamespace(name="agentforge", **{k: getattr(graphs, k) for k in graphs.__all__})


def _langgraph() -> SimpleNamespace:
    pytest.importorskip("langgraph")  # the reference runtime; ours runs without it
    from langgraph import errors, types
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.config import get_stream_writer
    from langgraph.graph import END, START, MessagesState, StateGraph, add_messages
    from langgraph.runtime import Runtime, get_runtime

    return SimpleNamespace(
        name="langgraph", StateGraph=StateGraph, START=START, END=END, Send=types.Send, Command=types.Command,
        interrupt=types.interrupt, RetryPolicy=types.RetryPolicy, Overwrite=types.Overwrite,
        CachePolicy=types.CachePolicy, InMemorySaver=InMemorySaver, InvalidUpdateError=errors.InvalidUpdateError,
        GraphRecursionError=errors.GraphRecursionError, EmptyInputError=errors.EmptyInputError,
        get_stream_writer=get_stream_writer, MessagesState=MessagesState, add_messages=add_messages,
        Runtime=Runtime, get_runtime=get_runtime,
    )


@pytest.fixture(params=["agentforge", "langgraph"])
def lg(request) -> SimpleNamespace:
    """The runtime under test: ours or LangGraph, with the same names."""
    return _ours() if request.param == "agentforge" else _langgraph()


@pytest.fixture
def ours() -> SimpleNamespace:
    return _ours()
