"""`create_plan_and_execute`: a structured plan, each step run by a ReAct sub-agent, then a replan
that either answers or revises the remaining steps (bounded by `max_replans`)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Annotated, TypedDict

from pydantic import BaseModel, Field

from agentforge.engine.protocol import ChatMessage
from agentforge.graphs import END, START, CompiledStateGraph, Overwrite, StateGraph, add_messages
from agentforge.tools import Tool

from .model import ChatModel, as_chat_model
from .react import create_react_agent

PLANNER = ("Make a short plan for the user's objective: a list of steps, each a self-contained instruction "
           "a helper with tools can carry out. The last step's result should answer the objective.")
REPLANNER = ("Objective: {objective}\nSteps done so far and their results:\n{done}\nSteps still planned:\n{left}\n"
             "If the results answer the objective, give the final answer in 'response'. Otherwise leave "
             "'response' empty and list the steps still needed in 'steps'.")
EXECUTOR = "Objective: {objective}\nDone so far:\n{done}\nYour task now: {step}"


class Plan(BaseModel):
    steps: list[str] = Field(description="the steps, in order")


class Replan(BaseModel):
    response: str | None = Field(None, description="the final answer, when the objective is met")
    steps: list[str] = Field(default_factory=list, description="the steps still needed, otherwise")


class PlanState(TypedDict, total=False):
    messages: Annotated[list[ChatMessage], add_messages]
    plan: list[str]
    past_steps: Annotated[list[tuple[str, str]], operator.add]
    replans: int


def create_plan_and_execute(model: ChatModel | str, tools: Sequence[Tool | Callable], *, max_replans: int = 2,
                            checkpointer=None, name: str | None = None) -> CompiledStateGraph:
    """Plan, execute one step at a time with a ReAct agent over `tools`, replan after each step.

    The objective is the last user message; the final answer is appended as an assistant message.
    After `max_replans` revisions the remaining plan runs to its end without further replanning,
    and the last step's result is the answer.
    """
    if not isinstance(max_replans, int) or max_replans < 0:
        raise ValueError(f"max_replans must be a non-negative integer, got {max_replans!r}")
    chat_model = as_chat_model(model)
    planner = chat_model.with_structured_output(Plan)
    replanner = chat_model.with_structured_output(Replan)
    executor = create_react_agent(chat_model, tools)

    async def plan(state) -> dict:
        made = await planner.ainvoke([ChatMessage(role="system", content=PLANNER), _objective_message(state)])
        return {"plan": made.steps or [_objective(state)], "replans": 0, "past_steps": Overwrite([])}

    async def execute(state) -> dict:
        step = state["plan"][0]
        task = EXECUTOR.format(objective=_objective(state), done=_done(state), step=step)
        out = await executor.ainvoke({"messages": [ChatMessage(role="user", content=task)]})
        result = out["messages"][-1].content or ""
        return {"past_steps": [(step, result)], "plan": state["plan"][1:]}

    async def replan(state) -> dict:
        if state.get("replans", 0) >= max_replans:
            if state["plan"]:
                return {}  # no more revisions: run the plan to its end
            return {"messages": [_answer(state["past_steps"][-1][1])]}
        prompt = REPLANNER.format(objective=_objective(state), done=_done(state),
                                  left="\n".join(f"- {s}" for s in state["plan"]) or "(none)")
        decided = await replanner.ainvoke([ChatMessage(role="user", content=prompt)])
        if decided.response or not decided.steps:
            return {"messages": [_answer(decided.response or state["past_steps"][-1][1])], "plan": []}
        return {"plan": decided.steps, "replans": state.get("replans", 0) + 1}

    def after_replan(state) -> str:
        last = state["messages"][-1]
        return END if last.role == "assistant" else "execute"

    graph = StateGraph(PlanState)
    graph.add_node("plan", plan)
    graph.add_node("execute", execute)
    graph.add_node("replan", replan)
    graph.add_edge(START, "plan")
    graph.add_edge("plan", "execute")
    graph.add_edge("execute", "replan")
    graph.add_conditional_edges("replan", after_replan, ["execute", END])
    return graph.compile(checkpointer=checkpointer, name=name)


def _objective_message(state) -> ChatMessage:
    return next(m for m in reversed(state["messages"]) if m.role == "user")


def _objective(state) -> str:
    content = _objective_message(state).content
    return content if isinstance(content, str) else str(content)


def _done(state) -> str:
    return "\n".join(f"- {step}: {result}" for step, result in state.get("past_steps") or []) or "(nothing yet)"


def _answer(text: str) -> ChatMessage:
    return ChatMessage(role="assistant", content=text)
