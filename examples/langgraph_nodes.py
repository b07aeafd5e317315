"""A LangGraph graph as a node of an AgentForge graph, and an AgentForge agent as a node of a
LangGraph graph; an interrupt inside the inner graph pauses the outer one and resumes it.
Needs `pip install 'agentforge[langchain]'`.

    python examples/langgraph_nodes.py
"""

from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver as LangGraphSaver
from langgraph.graph import START as LG_START
from langgraph.graph import MessagesState as LGMessagesState
from langgraph.graph import StateGraph as LGStateGraph
from langgraph.types import interrupt as lg_interrupt

from agentforge.agents import EngineChatModel, create_react_agent
from agentforge.graphs import START, Command, InMemorySaver, MessagesState, StateGraph
from agentforge.integrations.langgraph import as_langgraph_node, langgraph_node


# theirs in ours: a LangGraph approval step inside an AgentForge graph
def approve(state):
    answer = lg_interrupt(f"Send {len(state['messages'])} message(s)?")
    return {"messages": [AIMessage(content=f"approved: {answer}")]}


theirs = LGStateGraph(LGMessagesState)
theirs.add_node("approve", approve)
theirs.add_edge(LG_START, "approve")

ours = StateGraph(MessagesState)
ours.add_node("approval", langgraph_node(theirs.compile()))
ours.add_edge(START, "approval")
graph = ours.compile(checkpointer=InMemorySaver())
config = {"configurable": {"thread_id": "demo"}}
print("paused:", graph.invoke({"messages": [{"role": "user", "content": "ship it"}]}, config)["__interrupt__"][0].value)
print("resumed:", graph.invoke(Command(resume="yes"), config)["messages"][-1].content)


# ours in theirs: an AgentForge ReAct agent on the embedded engine as a LangGraph node
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


agent = create_react_agent(EngineChatModel("smollm2-135m", max_tokens=64), [add])
outer = LGStateGraph(LGMessagesState)
outer.add_node("agent", as_langgraph_node(agent))
outer.add_edge(LG_START, "agent")
final = outer.compile(checkpointer=LangGraphSaver()).invoke({"messages": [("user", "Use the add tool: what is 40 + 2?")]},
                                                              {"configurable": {"thread_id": "t"}})
for message in final["messages"]:
    print(f"{message.type:>5}: {message.content or message.tool_calls}")
