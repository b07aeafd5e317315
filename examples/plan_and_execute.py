"""Plan-and-execute on the embedded model: a structured plan (constrained decoding), each step run by
a ReAct agent with tools, and a replan after each step that answers or revises the plan.

    python examples/plan_and_execute.py "What is (12 * 12) + 56? Use the calculator."
"""

import sys

from agentforge.agents import EngineChatModel, create_plan_and_execute
from agentforge.tools.servers.calculator import calculate

model = EngineChatModel("smollm2-135m", max_tokens=128).bind_tools([], parallel_tool_calls=False)
agent = create_plan_and_execute(model, [calculate], max_replans=1)

objective = sys.argv[1] if len(sys.argv) > 1 else "What is (12 * 12) + 56? Use the calculator."
for update in agent.stream({"messages": [objective]}, {"recursion_limit": 20}, stream_mode="updates"):
    for node, change in update.items():
        if node == "plan" or (node == "replan" and change.get("plan")):
            print(f"{node}: {change['plan']}")
        elif node == "execute":
            step, result = change["past_steps"][0]
            print(f"did {step!r}: {result[:100]}")
        elif node == "replan" and change.get("messages"):
            print(f"answer: {change['messages'][-1].content}")
