"""Several agents on the embedded model: a supervisor that hands the request to a calculator agent or
a docs agent, and a swarm where the agents hand the conversation to each other.

    python examples/team_agents.py "Compute 1234 * 5678 with the calculator."
"""

import sys
from pathlib import Path

from agentforge.agents import Agent, EngineChatModel, create_supervisor, create_swarm
from agentforge.graphs import InMemorySaver
from agentforge.tools.servers import calculator, filesystem

model = EngineChatModel("smollm2-135m", max_tokens=96).bind_tools([], parallel_tool_calls=False)
docs = Path(__file__).resolve().parents[1] / "docs"
math = Agent("math", model, list(calculator.build().tools.values()), description="exact arithmetic")
reader = Agent("docs", model, list(filesystem.build(docs, read_only=True).tools.values()),
               description="reads AgentForge's documentation")
question = sys.argv[1] if len(sys.argv) > 1 else "Compute 1234 * 5678 with the calculator."
limit = {"recursion_limit": 12}


def show(out) -> None:
    for m in out["messages"][1:]:
        calls = [f"{c.function.name}({c.function.arguments})" for c in m.tool_calls or ()]
        print(f"  {m.name or m.role}: {(m.content or '')[:120]} {' '.join(calls)}")


print("supervisor:")
show(create_supervisor(model, [math, reader]).invoke({"messages": [question]}, limit))

print("swarm:")
swarm = create_swarm([math, reader], default_active_agent="docs", checkpointer=InMemorySaver())
config = {"configurable": {"thread_id": "example"}, **limit}
out = swarm.invoke({"messages": [question]}, config)
show(out)
print(f"the next turn starts with: {out.get('active_agent')}")
