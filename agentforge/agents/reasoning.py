"""Chain of thought, then a schema-constrained answer; and reflection: draft, critique, revise."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, Field

from agentforge.engine.protocol import ChatMessage
from agentforge.graphs import END, START, CompiledStateGraph, StateGraph, add_messages

from .model import ChatModel, as_chat_model

THINK = "Think step by step about the user's request. Write your reasoning; do not give the final answer yet."
ANSWER = "Reasoning so far:\n{reasoning}\n\nNow give the final answer in the required format."
CRITIC = ("Review the draft answer to the user's request below. If it is correct and complete, set ok to true; "
          "otherwise set ok to false and say precisely what to fix.\n\nRequest: {request}\n\nDraft:\n{draft}")
REVISE = "Revise your answer following this critique:\n{feedback}"


class Critique(BaseModel):
    ok: bool = Field(description="whether the draft needs no change")
    feedback: str = Field("", description="what to fix")


class CoTState(TypedDict, total=False):
    messages: Annotated[list[ChatMessage], add_messages]
    reasoning: str
    structured_response: Any


class ReflectionState(TypedDict, total=False):
    messages: Annotated[list[ChatMessage], add_messages]
    revisions: int
    critiques: list[str]


def create_cot_agent(model: ChatModel | str, response_format: type[BaseModel] | dict, *, checkpointer=None,
                     name: str | None = None) -> CompiledStateGraph:
    """Reason in free text first (`reasoning`), then answer in `response_format`
    (`structured_response`, constrained decoding on the embedded engine)."""
    chat_model = as_chat_model(model)
    answerer = chat_model.with_structured_output(response_format)

    async def think(state) -> dict:
        reply = await chat_model.ainvoke([ChatMessage(role="system", content=THINK), *state["messages"]])
        return {"reasoning": reply.content or ""}

    async def answer(state) -> dict:
        prompt = ChatMessage(role="user", content=ANSWER.format(reasoning=state["reasoning"]))
        parsed = await answerer.ainvoke([*state["messages"], prompt])
        text = parsed.model_dump_json() if isinstance(parsed, BaseModel) else str(parsed)
        return {"structured_response": parsed, "messages": [ChatMessage(role="assistant", content=text)]}

    graph = StateGraph(CoTState)
    graph.add_node("think", think)
    graph.add_node("answer", answer)
    graph.add_edge(START, "think").add_edge("think", "answer").add_edge("answer", END)
    return graph.compile(checkpointer=checkpointer, name=name)


def create_reflection_agent(model: ChatModel | str, *, critic: ChatModel | str | None = None, max_revisions: int = 2,
                            checkpointer=None, name: str | None = None) -> CompiledStateGraph:
    """Draft an answer, have `critic` (default: the same model) review it as a structured
    `Critique`, revise until it is ok or after `max_revisions` revisions."""
    if not isinstance(max_revisions, int) or max_revisions < 0:
        raise ValueError(f"max_revisions must be a non-negative integer, got {max_revisions!r}")
    writer = as_chat_model(model)
    reviewer = as_chat_model(critic or writer).with_structured_output(Critique)

    async def draft(state) -> dict:
        return {"messages": [await writer.ainvoke(state["messages"])], "revisions": 0, "critiques": []}

    async def critique(state) -> dict:
        request = next(m for m in reversed(state["messages"]) if m.role == "user").content
        verdict = await reviewer.ainvoke([ChatMessage(role="user", content=CRITIC.format(
            request=request, draft=state["messages"][-1].content))])
        return {"critiques": [*state["critiques"], "" if verdict.ok else verdict.feedback or "improve it"]}

    async def revise(state) -> dict:
        prompt = ChatMessage(role="user", content=REVISE.format(feedback=state["critiques"][-1]))
        revised = await writer.ainvoke([*state["messages"], prompt])
        # the revision replaces the draft in the conversation: one answer, the best one
        return {"messages": [revised.model_copy(update={"id": state["messages"][-1].id})],
                "revisions": state["revisions"] + 1}

    def after_critique(state) -> str:
        return END if not state["critiques"][-1] or state["revisions"] >= max_revisions else "revise"

    graph = StateGraph(ReflectionState)
    graph.add_node("draft", draft)
    graph.add_node("critique", critique)
    graph.add_node("revise", revise)
    graph.add_edge(START, "draft").add_edge("draft", "critique").add_edge("revise", "critique")
    graph.add_conditional_edges("critique", after_critique, ["revise", END])
    return graph.compile(checkpointer=checkpointer, name=name)
