"""Several agents in one graph: a supervisor that routes to named agents, and a swarm whose agents
hand the conversation to each other. Both are built on handoff tools: `transfer_to_<name>`.

A handoff is a tool call like any other, run by the same `tools` node (it answers "Transferred to
<name>"); after the tools, the conversation goes to the agent the reply handed off to, else back to
the agent that called. So a reply that hands off *and* calls an ordinary tool keeps that tool's
result (it runs in the same step) and then goes to the new agent — no lost result, no loop. Each
agent that speaks sets `active_agent`, which is state and survives checkpoints: a swarm's next
turn starts with the agent that spoke last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, TypedDict

from agentforge.engine.protocol import ChatMessage, ToolCall
from agentforge.graphs import END, START, CompiledStateGraph, RemainingSteps, Send, StateGraph, add_messages
from agentforge.tools import Tool, ToolNode

from .model import ChatModel, as_chat_model
from .react import NEED_MORE_STEPS, model_turn, out_of_steps

HANDOFF_PREFIX = "transfer_to_"


@dataclass
class Agent:
    """One member of a team: its model, tools and system prompt; `description` tells the others
    (and the supervisor) what it is for."""

    name: str
    model: ChatModel | str
    tools: Sequence[Tool | Callable] = ()
    prompt: str | None = None
    description: str = ""
    handoffs: list[str] = field(default_factory=list)  # whom it may hand off to (set by the builders)


class TeamState(TypedDict, total=False):
    messages: Annotated[list[ChatMessage], add_messages]
    active_agent: str
    remaining_steps: RemainingSteps


def create_supervisor(model: ChatModel | str, agents: Sequence[Agent | CompiledStateGraph], *,
                      prompt: str | None = None, tools: Sequence[Tool | Callable] = (), checkpointer=None,
                      name: str = "supervisor") -> CompiledStateGraph:
    """A supervisor that hands the conversation to one of `agents` at a time; each agent's answer
    comes back to the supervisor, which answers the user (END) or hands off again. An agent may be
    an `Agent` or a compiled graph with a `name` (it runs on the conversation as a subgraph)."""
    members = [_member(a) for a in agents]
    names = [m.name for m in members]
    boss = Agent(name, model, tools, prompt or _supervisor_prompt(members), handoffs=names)
    return _build([boss, *members], entry=lambda state: name, on_answer={m.name: name for m in members},
                  checkpointer=checkpointer)


def create_swarm(agents: Sequence[Agent], *, default_active_agent: str, checkpointer=None) -> CompiledStateGraph:
    """Agents that hand the conversation to each other; the one that answers ends the turn and
    starts the next one (`active_agent`, kept by the checkpointer)."""
    names = [a.name for a in agents]
    if default_active_agent not in names:
        raise ValueError(f"default_active_agent {default_active_agent!r} is not one of {names}")
    if not all(isinstance(a, Agent) for a in agents):
        raise TypeError("swarm members must be Agent specs (their models get the handoff tools)")
    members = [replace(a, handoffs=a.handoffs or [n for n in names if n != a.name]) for a in agents]
    return _build(members, entry=lambda state: state.get("active_agent") or default_active_agent,
                  on_answer={}, checkpointer=checkpointer)


def _member(agent: Agent | CompiledStateGraph) -> Agent | CompiledStateGraph:
    if isinstance(agent, Agent) or getattr(agent, "_is_compiled_graph", False) and agent.name:
        return agent
    raise TypeError(f"an agent must be an Agent or a compiled graph with a name, got {agent!r}")


def _supervisor_prompt(members) -> str:
    lines = "\n".join(f"- {m.name}: {getattr(m, 'description', '') or 'an assistant'}" for m in members)
    return ("You lead a team. Hand the user's request to the member who can do it with the matching "
            f"transfer_to_<name> tool, then answer the user from their reply.\nTeam:\n{lines}")


def handoff_tool(target: str, description: str = "") -> Tool:
    """`transfer_to_<target>`: the tool an agent calls to hand the conversation over."""

    def transfer() -> str:
        return f"Transferred to {target}"

    return Tool(transfer, name=f"{HANDOFF_PREFIX}{target}",
                description=f"Hand the conversation to {target}" + (f": {description}" if description else "."))


def _build(members: list, entry: Callable, on_answer: dict[str, str], checkpointer) -> CompiledStateGraph:
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ValueError(f"agent names must be unique, got {names}")
    by_name = {m.name: m for m in members}
    specs = [m for m in members if isinstance(m, Agent)]
    tool_nodes = {s.name: ToolNode(list(s.tools)) for s in specs}  # each agent runs its own tools

    def handoff_target(call: ToolCall) -> str | None:
        target = call.function.name.removeprefix(HANDOFF_PREFIX)
        return target if call.function.name.startswith(HANDOFF_PREFIX) and target in by_name else None

    graph = StateGraph(TeamState)
    for spec in specs:
        graph.add_node(spec.name, _agent_node(spec, by_name, tool_nodes[spec.name]))
        graph.add_conditional_edges(spec.name, _after_agent(spec.name, on_answer.get(spec.name, END)),
                                    ["tools", on_answer.get(spec.name, END)])
    for member in members:
        if not isinstance(member, Agent):
            graph.add_node(member.name, _graph_node(member))
            graph.add_edge(member.name, on_answer[member.name])

    def run_tool(task: dict) -> dict:
        call, agent, handoff = task["tool_call"], task["agent"], task["handoff"]
        target = handoff_target(call)
        if target is not None:
            if target not in by_name[agent].handoffs:
                return {"messages": [_tool_error(call, f"{agent} cannot hand off to {target}")]}
            if call.id != handoff:
                return {"messages": [_tool_error(call, "only one handoff per reply: the first one was made")]}
            return {"messages": [_tool_message(call, f"Transferred to {target}")]}
        tools = tool_nodes[agent].tools
        if call.function.name not in tools:
            return {"messages": [_tool_error(call, f"{agent} has no tool named {call.function.name!r}; its tools: "
                                                   f"{sorted(tools)}")]}
        return {"messages": [tool_nodes[agent].run_call(call)]}

    graph.add_node("tools", run_tool)

    def next_agent(state) -> str:  # the same answer for every parallel tool task of the reply
        reply = next(m for m in reversed(state["messages"]) if m.role == "assistant")
        targets = (handoff_target(call) for call in reply.tool_calls or ())
        return next((t for t in targets if t in by_name[reply.name].handoffs), reply.name)

    graph.add_conditional_edges("tools", next_agent, names)
    graph.add_conditional_edges(START, entry, names)
    return graph.compile(checkpointer=checkpointer)


def _agent_node(spec: Agent, by_name: dict, tool_node: ToolNode):
    handoffs = [handoff_tool(t, getattr(by_name[t], "description", "")) for t in spec.handoffs]
    model = as_chat_model(spec.model)
    tools = [*tool_node.tools.values(), *handoffs]
    bound = model.bind_tools(tools, tool_choice=model.tool_choice, parallel_tool_calls=model.parallel_tool_calls)
    answer_only = model.bind_tools(tools, tool_choice="none")
    system = [ChatMessage(role="system", content=spec.prompt)] if spec.prompt else []

    async def node(state) -> dict:
        reply = await model_turn(bound, answer_only, [*system, *state["messages"]], state["messages"])
        reply = reply.model_copy(update={"name": spec.name})
        if out_of_steps(reply, state.get("remaining_steps")):
            reply = ChatMessage(role="assistant", id=reply.id, name=spec.name, content=NEED_MORE_STEPS)
        return {"messages": [reply], "active_agent": spec.name}

    return node


def _after_agent(name: str, on_answer: str):
    def route(state) -> Any:
        last = state["messages"][-1]
        if not last.tool_calls:
            return on_answer
        handoff = next((c.id for c in last.tool_calls if c.function.name.startswith(HANDOFF_PREFIX)), None)
        return [Send("tools", {"tool_call": c, "agent": name, "handoff": handoff}) for c in last.tool_calls]

    return route


def _graph_node(graph: CompiledStateGraph):
    async def node(state) -> dict:
        out = await graph.ainvoke({"messages": state["messages"]})
        new = out["messages"][len(state["messages"]):]
        return {"messages": [m.model_copy(update={"name": graph.name}) if m.role == "assistant" else m for m in new],
                "active_agent": graph.name}

    return node


def _tool_message(call: ToolCall, content: str) -> ChatMessage:
    return ChatMessage(role="tool", tool_call_id=call.id, name=call.function.name, content=content)


def _tool_error(call: ToolCall, content: str) -> ChatMessage:
    return ChatMessage(role="tool", tool_call_id=call.id, name=call.function.name, content=f"Error: {content}",
                       status="error")
