"""Answers from retrieved sources: a RAG graph (retrieve -> grade -> generate with citations ->
optional groundedness check) and an agentic variant where a ReAct agent searches by itself.

Citations are numbers into the retrieved passages, written as `[n]`. Every number is checked: one
that maps to no passage is removed and the answer says so. An answer that cites nothing (small
models often forget) is attributed to the passage sharing most of its content words, if any
shares enough of them to count as support."""

from __future__ import annotations

import asyncio
import re
from typing import Any, TypedDict

from pydantic import BaseModel, Field

from agentforge.agents import ChatModel, as_chat_model, create_react_agent
from agentforge.engine.protocol import ChatMessage
from agentforge.graphs import END, START, CompiledStateGraph, StateGraph

from ._adapters import format_hits
from .documents import Hit
from .retrieval import Retriever

SYSTEM = "You answer questions from numbered passages and cite them."
ANSWER = ("{passages}\n\nAnswer the question in one sentence using the passages above. End with the number of the "
          "passage you used, like [1].\nQuestion: {question}")
GRADE = "Does this passage help answer the question?\n\nQuestion: {question}\n\nPassage:\n{passage}"
GROUNDED = ("Is every claim of the answer supported by the sources? Sources:\n{sources}\n\nAnswer: {answer}")
NOT_FOUND = "I could not find this in the knowledge base."
AGENT_PROMPT = ("Answer from the knowledge base: search it with {tool}, then answer using only what it returned and "
                "cite the passages you used as [1], [2].")
_MARKER = re.compile(r"\[(\d+)\]")
_WORD = re.compile(r"\w{3,}")
MIN_SUPPORT = 0.3


class Relevance(BaseModel):
    relevant: bool


class Groundedness(BaseModel):
    grounded: bool
    unsupported: str = Field("", description="claims the sources do not support")


class RagState(TypedDict, total=False):
    question: str
    hits: list[Hit]
    answer: str
    citations: list[dict]
    removed_citations: list[int]
    grounded: bool


def check_citations(answer: str, hits: list[Hit]) -> tuple[str, list[dict], list[int]]:
    """Keep the `[n]` markers of `answer` that map to a passage, remove the others; with none left,
    cite the passage that shares most content words with the answer (at least MIN_SUPPORT of them).
    Returns (answer, citations as {n, source, section}, removed numbers)."""
    valid = range(1, len(hits) + 1)
    removed = sorted({int(n) for n in _MARKER.findall(answer) if int(n) not in valid})
    text = re.sub(r"\s+([.,;:])", r"\1", _MARKER.sub(lambda m: m.group(0) if int(m.group(1)) in valid else "", answer))
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    numbers = list(dict.fromkeys(int(n) for n in _MARKER.findall(text)))
    if not numbers and (best := _best_support(text, hits)) is not None:
        numbers = [best]
        text = f"{text} [{best}]"
    if removed:
        text += (f"\n(Removed citation{'s' if len(removed) > 1 else ''} {', '.join(f'[{n}]' for n in removed)}: "
                 f"no such source was retrieved.)")
    citations = [{"n": n, "source": hits[n - 1].source, "section": hits[n - 1].metadata.get("section", "")}
                 for n in sorted(numbers)]
    return text, citations, removed


def _best_support(answer: str, hits: list[Hit]) -> int | None:
    from bm25s.stopwords import STOPWORDS_EN

    words = {w for w in _WORD.findall(answer.lower()) if w not in STOPWORDS_EN}
    if not words:
        return None
    shares = [len(words & set(_WORD.findall(hit.text.lower()))) / len(words) for hit in hits]
    best = max(range(len(hits)), key=lambda i: (shares[i], -i))
    return best + 1 if shares[best] >= MIN_SUPPORT else None


def create_rag_graph(model: ChatModel | str, retriever: Retriever, *, grade: bool = True, check_grounded: bool = False,
                     checkpointer=None, name: str | None = None) -> CompiledStateGraph:
    """`{"question": ...}` in; `answer` (with `[n]` markers), `citations`, `hits`,
    `removed_citations` and, with `check_grounded`, `grounded` out. `grade` has the model drop
    retrieved passages that do not help before it answers."""
    if not isinstance(retriever, Retriever):
        raise ValueError("retriever must have .retrieve(query) (e.g. KnowledgeBase.as_retriever())")
    chat_model = as_chat_model(model)
    grader = chat_model.with_structured_output(Relevance)
    checker = chat_model.with_structured_output(Groundedness)

    async def retrieve(state) -> dict:
        question = state.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("the input needs a non-empty 'question'")
        return {"hits": await asyncio.to_thread(retriever.retrieve, question)}

    async def grade_hits(state) -> dict:
        verdicts = [await grader.ainvoke([ChatMessage(role="user", content=GRADE.format(
            question=state["question"], passage=hit.text))]) for hit in state["hits"]]
        return {"hits": [hit for hit, verdict in zip(state["hits"], verdicts) if verdict.relevant]}

    async def generate(state) -> dict:
        hits = state["hits"]
        if not hits:
            return {"answer": NOT_FOUND, "citations": [], "removed_citations": []}
        passages = "\n\n".join(f"[{n}] {hit.text}" for n, hit in enumerate(hits, 1))
        reply = await chat_model.ainvoke([ChatMessage(role="system", content=SYSTEM), ChatMessage(
            role="user", content=ANSWER.format(passages=passages, question=state["question"]))])
        text, citations, removed = check_citations(reply.content or "", hits)
        return {"answer": text, "citations": citations, "removed_citations": removed}

    async def check(state) -> dict:
        if not state["citations"]:
            return {"grounded": False}
        verdict = await checker.ainvoke([ChatMessage(role="user", content=GROUNDED.format(
            sources=format_hits(state["hits"]), answer=state["answer"]))])
        return {"grounded": verdict.grounded}

    graph = StateGraph(RagState)
    graph.add_node("retrieve", retrieve)
    graph.add_node("generate", generate)
    last = "retrieve"
    if grade:
        graph.add_node("grade", grade_hits)
        graph.add_edge("retrieve", "grade")
        last = "grade"
    graph.add_edge(START, "retrieve").add_edge(last, "generate")
    if check_grounded:
        graph.add_node("check", check)
        graph.add_edge("generate", "check").add_edge("check", END)
    else:
        graph.add_edge("generate", END)
    return graph.compile(checkpointer=checkpointer, name=name)


def create_rag_agent(model: ChatModel | str, knowledge_base, **agent_options: Any) -> CompiledStateGraph:
    """A ReAct agent with the knowledge base's search tool (plus any `tools=` given), told to cite."""
    search = knowledge_base.as_tool()
    tools = [search, *agent_options.pop("tools", [])]
    prompt = agent_options.pop("prompt", AGENT_PROMPT.format(tool=search.name))
    return create_react_agent(model, tools, prompt=prompt, **agent_options)
