"""Memory: the namespaced store (in memory and SQLite) with LangGraph's BaseStore API and semantic
search through an embedding function, reachable from an agent's tools across threads; and
trim_messages by token count."""

from __future__ import annotations

import hashlib
from typing import TypedDict

import numpy as np
import pytest

from agentforge.agents import (
    InMemoryStore,
    ScriptedChatModel,
    SqliteStore,
    create_react_agent,
    memory_tools,
    summarize_history,
    trim_messages,
)
from agentforge.engine.protocol import ChatMessage
from agentforge.graphs import InMemorySaver, StateGraph, get_store


def embed(texts: list[str]) -> list[np.ndarray]:
    """A bag-of-words embedding: texts sharing words are close (a real model plugs in the same way)."""
    out = []
    for text in texts:
        v = np.zeros(64, dtype=np.float32)
        for word in text.lower().replace("?", " ").replace(".", " ").split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1
        out.append(v)
    return out


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request, tmp_path):
    index = {"embed": embed, "dims": 64, "fields": ["text"]}
    if request.param == "memory":
        yield InMemoryStore(index=index)
    elif request.param == "sqlite":
        with SqliteStore(tmp_path / "store.db", index=index) as s:
            yield s
    else:
        from agentforge.agents import PostgresStore

        with PostgresStore(request.getfixturevalue("postgres_url"), index=index) as s:
            with s.pool.connection() as conn:
                conn.execute("DELETE FROM agentforge_store")
            yield s


def test_put_get_search_delete_and_namespaces(store):
    store.put(("users", "ada"), "food", {"text": "Ada is vegetarian and loves lentil soup"})
    store.put(("users", "ada"), "city", {"text": "Ada lives in Lyon", "kind": "place"})
    store.put(("users", "bob"), "city", {"text": "Bob lives in Oslo", "kind": "place"})
    item = store.get(("users", "ada"), "food")
    assert item.value["text"].startswith("Ada is vegetarian") and item.namespace == ("users", "ada")
    hits = store.search(("users", "ada"), query="what soup does Ada love?")
    assert [h.key for h in hits] == ["food", "city"] and hits[0].score > hits[1].score
    assert [h.namespace for h in store.search(("users",), filter={"kind": "place"}, query="who lives in Oslo")] == [
        ("users", "bob"), ("users", "ada")]
    assert store.list_namespaces(prefix=("users",)) == [("users", "ada"), ("users", "bob")]
    assert store.list_namespaces(max_depth=1) == [("users",)]
    created = item.created_at
    store.put(("users", "ada"), "food", {"text": "Ada now eats fish"})
    again = store.get(("users", "ada"), "food")
    assert again.created_at == created and again.updated_at >= created and again.value["text"] == "Ada now eats fish"
    store.delete(("users", "ada"), "food")
    assert store.get(("users", "ada"), "food") is None
    with pytest.raises(ValueError, match="namespace"):
        store.put(("users", ""), "k", {})
    with pytest.raises(ValueError, match="must be a dict"):
        store.put(("users",), "k", "not a dict")


def test_the_sqlite_store_keeps_items_across_connections(tmp_path):
    index = {"embed": embed, "dims": 64, "fields": ["text"]}
    with SqliteStore(tmp_path / "m.db", index=index) as first:
        first.put(("notes",), "n1", {"text": "the launch is on Friday"})
    with SqliteStore(tmp_path / "m.db", index=index) as second:
        assert second.search(("notes",), query="when is the launch")[0].value == {"text": "the launch is on Friday"}


def test_an_agent_remembers_in_one_thread_and_recalls_in_another():
    store = InMemoryStore(index={"embed": embed, "dims": 64, "fields": ["text"]})
    model = ScriptedChatModel([
        {"tool_calls": [{"name": "remember", "args": {"key": "diet", "content": "the user is vegetarian"}, "id": "a"}]},
        "Noted.",
        {"tool_calls": [{"name": "recall", "args": {"query": "is the user vegetarian"}, "id": "b"}]},
        "You are vegetarian.",
    ])
    agent = create_react_agent(model, memory_tools(("memories", "user-1")), checkpointer=InMemorySaver(), store=store)
    agent.invoke({"messages": ["I am vegetarian."]}, {"configurable": {"thread_id": "monday"}})
    out = agent.invoke({"messages": ["What do I eat?"]}, {"configurable": {"thread_id": "tuesday"}})
    assert out["messages"][2].content == '["the user is vegetarian"]'
    assert len(out["messages"]) == 4  # the second thread did not see the first one's messages


def test_nodes_reach_the_store_and_a_graph_without_one_says_so():
    class State(TypedDict):
        done: bool

    store = InMemoryStore()
    graph = StateGraph(State)
    graph.add_node("write", lambda state, store: store.put(("n",), "k", {"v": 1}) or {"done": True})
    graph.add_edge("__start__", "write")
    graph.compile(store=store).invoke({})
    assert store.get(("n",), "k").value == {"v": 1}
    assert get_store() is None  # outside a graph
    agent = create_react_agent(ScriptedChatModel([{"tool_calls": [{"name": "recall", "args": {"query": "x"}, "id": "c"}]},
                                                  "ok"]), memory_tools())
    out = agent.invoke({"messages": ["hi"]})
    assert "has no store" in out["messages"][2].content and out["messages"][2].status == "error"


def test_trim_keeps_the_system_prompt_and_the_latest_turns_within_budget():
    words = lambda messages: sum(len(str(m.content or "").split()) for m in messages)  # noqa: E731
    history = [ChatMessage(role="system", content="be brief"),
               ChatMessage(role="user", content="one two three four"),
               ChatMessage(role="assistant", content="five six", tool_calls=[
                   {"id": "c", "function": {"name": "f", "arguments": "{}"}}]),
               ChatMessage(role="tool", content="seven", tool_call_id="c"),
               ChatMessage(role="assistant", content="eight nine"),
               ChatMessage(role="user", content="ten eleven")]
    trimmed = trim_messages(history, max_tokens=8, token_counter=words)
    assert [m.content for m in trimmed] == ["be brief", "ten eleven"]  # never opens on the orphaned tool result
    assert [m.content for m in trim_messages(history, max_tokens=100, token_counter=words)] == [
        m.content for m in history]
    with pytest.raises(ValueError, match="max_tokens"):
        trim_messages(history, max_tokens=0, token_counter=words)


def test_trim_counts_with_the_models_own_tokenizer(smollm2_path):
    from agentforge.agents import EngineChatModel

    model = EngineChatModel(smollm2_path, max_model_len=2048)
    history = [{"role": "user", "content": f"message number {i} " * 20} for i in range(30)]
    trimmed = trim_messages(history, max_tokens=300, token_counter=model)
    assert 0 < len(trimmed) < 30 and model.count_tokens(trimmed) <= 300
    assert trimmed[-1].content == history[-1]["content"]


def test_old_turns_are_replaced_by_a_summary_in_the_thread():
    words = lambda messages: sum(len(str(m.content or "").split()) for m in messages)  # noqa: E731
    summarizer = ScriptedChatModel(["The user likes tea and lives in Lyon."])
    model = ScriptedChatModel(["Nice, tea.", "Lyon is lovely.", "You like tea."])
    agent = create_react_agent(model, [], checkpointer=InMemorySaver(),
                               pre_model_hook=summarize_history(summarizer, max_tokens=12, token_counter=words,
                                                                keep_last=2))
    config = {"configurable": {"thread_id": "t"}}
    agent.invoke({"messages": ["I like tea very much"]}, config)
    agent.invoke({"messages": ["I live in Lyon in France"]}, config)
    assert summarizer.calls == []  # still within budget
    out = agent.invoke({"messages": ["What do I like to drink?"]}, config)
    # the last 2 messages, widened to start on a user turn, stay; the first turn became the summary
    assert [(m.role, m.content) for m in out["messages"]] == [
        ("system", "Summary of the earlier conversation: The user likes tea and lives in Lyon."),
        ("user", "I live in Lyon in France"), ("assistant", "Lyon is lovely."),
        ("user", "What do I like to drink?"), ("assistant", "You like tea.")]
    assert summarizer.calls[0]["messages"][1].content == "user: I like tea very much\nassistant: Nice, tea."
    assert [m.role for m in model.calls[2]["messages"]] == ["system", "user", "assistant", "user"]
