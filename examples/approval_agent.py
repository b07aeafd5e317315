"""Human in the loop: the agent asks before each tool call. The run pauses with one interrupt per
pending call; resume it with "approve", {"type": "edit", "args": {...}} or {"type": "reject"}.

    python examples/approval_agent.py
"""

from agentforge.agents import EngineChatModel, create_react_agent
from agentforge.graphs import Command, InMemorySaver
from agentforge.tools.servers.calculator import calculate

model = EngineChatModel("smollm2-135m", max_tokens=128)
agent = create_react_agent(model, [calculate], approve_tools=True, checkpointer=InMemorySaver())
config = {"configurable": {"thread_id": "example"}, "recursion_limit": 8}

out = agent.invoke({"messages": ["Compute 1234 * 5678 with the calculator."]}, config)
while out.get("__interrupt__"):
    answers = {}
    for pending in out["__interrupt__"]:
        call = pending.value["tool_call"]
        print(f"the agent wants to run {call['name']}({call['args']})")
        # a program decides here; the chat app shows Approve / Reject buttons instead
        safe = call["name"] == "calculate" and len(str(call["args"])) < 200
        answers[pending.id] = "approve" if safe else {"type": "reject", "message": "too long"}
    out = agent.invoke(Command(resume=answers), config)

for message in out["messages"]:
    print(f"{message.role}: {message.content or [c.function.name for c in message.tool_calls]}")
