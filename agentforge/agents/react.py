"""`create_react_agent`: the model calls tools until it answers — LangGraph's prebuilt agent, with
human approval of tool calls built in.

The graph is `agent` → (`tools`, one task per call, in parallel) → `agent` ... → END, plus
`generate_structured_response` when a `response_format` is given. Each call is sent to `tools`
as its own task, so parallel calls run concurrently and each approval is its own interrupt.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel

from agentforge.engine.protocol import ChatMessage, ToolCall
from agentforge.graphs import END, START, CompiledStateGraph, RemainingSteps, Send, StateGraph, add_messages, interrupt
from agentforge.tools import Tool, ToolNode

from ._approval import ask_approval
from .model import ChatModel, as_chat_model
from .text_react import TextReActModel

NEED_MORE_STEPS = "Sorry, need more steps to process this request."

Prompt = str | ChatMessage | Callable[[Any], list]


class AgentState(TypedDict, total=False):
    """The agent's state: the conversation, and the supersteps left before the recursion limit."""

    messages: Annotated[list[ChatMessage], add_messages]
    remaining_steps: RemainingSteps


class AgentStateWithStructuredResponse(AgentState, total=False):
    structured_response: Any


def create_react_agent(
    model: str | ChatModel,
    tools: Sequence[Tool | Callable] | ToolNode,
    *,
    prompt: Prompt | None = None,
    pre_model_hook: Callable | None = None,
    response_format: type[BaseModel] | dict | None = None,
    approve_tools: bool | Collection[str] = False,
    tool_calling: Literal["native", "text"] | None = None,
    state_schema: type | None = None,
    context_schema: type | None = None,
    checkpointer=None,
    store=None,
    interrupt_before: list[str] | None = None,
    interrupt_after: list[str] | None = None,
    name: str | None = None,
    debug: bool = False,
) -> CompiledStateGraph:
    """A ReAct agent as a compiled graph (invoke, stream, checkpoint and interrupt it like any graph).

    - `model`: a `ChatModel`, or a model name for the embedded engine.
    - `prompt`: a system prompt (str or message), or a function of the state returning the messages.
    - `pre_model_hook`: a node run before every model call (e.g. `summarize_history(...)`).
    - `response_format`: after the last answer, one more call returns this schema in
      `structured_response`.
    - `approve_tools`: True (every tool) or tool names whose calls wait for a human: the run
      interrupts with `{"type": "tool_approval", "tool_call": ...}` per call; resume with
      "approve", `{"type": "edit", "args": {...}}` or `{"type": "reject", "message": ...}`.
    - `checkpointer` keeps each thread's conversation (short-term memory); `store` is long-term
      memory across threads, which tools reach with `get_store()` (see `memory_tools`).
    - `tool_calling`: "native" (the API's tools) or "text" (Thought / Action / Observation, for
      endpoints without function calling); by default what the model supports.
    - A reply that only repeats calls already answered is asked again without tools (small models
      loop on a call they made); the run stops with a "need more steps" answer when the recursion
      limit would cut a tool loop.
    """
    chat_model = as_chat_model(model)
    tool_node = tools if isinstance(tools, ToolNode) else ToolNode(list(tools))
    if not isinstance(approve_tools, bool):
        unknown = sorted(set(approve_tools) - set(tool_node.tools))
        if unknown:
            raise ValueError(f"approve_tools names unknown tools {unknown}; tools: {sorted(tool_node.tools)}")
    if tool_calling not in (None, "native", "text"):
        raise ValueError(f"tool_calling must be 'native' or 'text', got {tool_calling!r}")
    text_mode = tool_calling == "text" or (tool_calling is None and not chat_model.native_tools)
    if text_mode:
        chat_model = TextReActModel(chat_model)
    # a model bound beforehand keeps its tool_choice (e.g. "required" for a model that must act)
    bound = chat_model.bind_tools(list(tool_node.tools.values()), tool_choice=chat_model.tool_choice,
                                  parallel_tool_calls=chat_model.parallel_tool_calls)
    if state_schema is None:
        state_schema = AgentStateWithStructuredResponse if response_format is not None else AgentState

    answer_only = chat_model.bind_tools(list(tool_node.tools.values()), tool_choice="none")

    async def agent(state) -> dict:
        response = await model_turn(bound, answer_only, _model_input(prompt, state), _value(state, "messages"))
        if name:
            response = response.model_copy(update={"name": name})
        if out_of_steps(response, _value(state, "remaining_steps")):
            return {"messages": [ChatMessage(role="assistant", id=response.id, content=NEED_MORE_STEPS)]}
        return {"messages": [response]}

    def run_tool(task: dict) -> dict:
        call: ToolCall = task["tool_call"]
        if approve_tools is True or (approve_tools and call.function.name in approve_tools):
            call, refusal = ask_approval(call, interrupt)
            if refusal is not None:
                return {"messages": [refusal]}
        return {"messages": [tool_node.run_call(call)]}

    run_tool.tools = tool_node.tools  # what this node runs: A2A agent cards list them as skills

    async def structured(state) -> dict:
        messages = _value(state, "messages")
        if isinstance(response_format, tuple):  # (system prompt, schema), as in LangGraph
            system, schema = response_format
            messages = [ChatMessage(role="system", content=system), *messages]
        else:
            schema = response_format
        return {"structured_response": await chat_model.with_structured_output(schema).ainvoke(messages)}

    def route(state) -> str | list[Send]:
        last = _value(state, "messages")[-1]
        if getattr(last, "tool_calls", None):
            return [Send("tools", {"tool_call": call}) for call in last.tool_calls]
        return "generate_structured_response" if response_format is not None else END

    graph = StateGraph(state_schema, context_schema=context_schema)
    entry = "agent"
    if pre_model_hook is not None:
        graph.add_node("pre_model_hook", pre_model_hook)
        graph.add_edge("pre_model_hook", "agent")
        entry = "pre_model_hook"
    graph.add_node("agent", agent)
    graph.add_node("tools", run_tool)
    graph.add_edge(START, entry)
    paths = ["tools", "generate_structured_response" if response_format is not None else END]
    graph.add_conditional_edges("agent", route, paths)
    graph.add_edge("tools", entry)
    if response_format is not None:
        graph.add_node("generate_structured_response", structured)
        graph.add_edge("generate_structured_response", END)
    return graph.compile(checkpointer=checkpointer, store=store, interrupt_before=interrupt_before,
                         interrupt_after=interrupt_after, debug=debug, name=name)


async def model_turn(bound: ChatModel, answer_only: ChatModel, model_input: list, history: list) -> ChatMessage:
    """One reply of a tool-using agent; a reply that only repeats answered calls is asked again
    without tools (small models loop on a call they made)."""
    reply = await bound.ainvoke(model_input)
    if reply.tool_calls and only_repeats(reply.tool_calls, history):
        reply = await answer_only.ainvoke(model_input)
    return reply


def out_of_steps(reply: ChatMessage, remaining_steps: int | None) -> bool:
    """Whether a reply that calls tools must stop instead: the tools take one step and the agent
    another, so with fewer than 3 left the loop cannot finish (LangGraph checks < 2 and, at one
    parity of the limit, hits GraphRecursionError instead)."""
    return bool(reply.tool_calls) and remaining_steps is not None and remaining_steps < 3


def only_repeats(calls: list[ToolCall], messages: list) -> bool:
    """Whether every call repeats one (same tool, same arguments) whose result is already in `messages`."""
    answered = {m.tool_call_id for m in messages if m.role == "tool"}
    made = {_call_key(c) for m in messages if m.role == "assistant" for c in m.tool_calls or () if c.id in answered}
    return all(_call_key(c) in made for c in calls)


def _call_key(call: ToolCall) -> tuple[str, str]:
    try:
        return call.function.name, json.dumps(json.loads(call.function.arguments or "{}"), sort_keys=True)
    except json.JSONDecodeError:
        return call.function.name, call.function.arguments


def _value(state, key: str):
    return state.get(key) if isinstance(state, dict) else getattr(state, key, None)


def _model_input(prompt: Prompt | None, state) -> list:
    messages = list(_value(state, "messages") or [])
    if prompt is None:
        return messages
    if isinstance(prompt, str):
        return [ChatMessage(role="system", content=prompt), *messages]
    if isinstance(prompt, ChatMessage):
        return [prompt, *messages]
    if callable(prompt):
        return list(prompt(state))
    raise TypeError(f"prompt must be a string, a ChatMessage or a function of the state, got {type(prompt).__name__}")
