"""A ReAct agent on the embedded model: it calls tools (grammar-constrained, so every call parses and
matches its schema), reads their results and answers; its tokens and tool calls stream as they come.

    python examples/react_agent.py "How much do 3 shares of QBIT cost? Use the tools."
"""

import sys

from agentforge.agents import EngineChatModel, create_react_agent
from agentforge.tools import tool
from agentforge.tools.servers.calculator import calculate

PRICES = {"ZNTH": 187.42, "QBIT": 23.05}


@tool
def get_stock_price(ticker: str) -> float:
    """Get the current price of one share, in dollars, by ticker symbol."""
    return PRICES[ticker.strip().upper()]


model = EngineChatModel("smollm2-135m", max_tokens=128).bind_tools([], parallel_tool_calls=False)
agent = create_react_agent(model, [get_stock_price, calculate])

question = sys.argv[1] if len(sys.argv) > 1 else "Get the current share price of QBIT."
print(f"you> {question}\nagent> ", end="", flush=True)
for mode, chunk in agent.stream({"messages": [question]}, {"recursion_limit": 8}, stream_mode=["messages", "updates"]):
    if mode == "messages":
        print(chunk[0].content, end="", flush=True)
    elif "agent" in chunk:
        for call in chunk["agent"]["messages"][-1].tool_calls or ():
            print(f"\n  [calls {call.function.name}({call.function.arguments})]", flush=True)
    elif "tools" in chunk:
        print(f"  [result: {chunk['tools']['messages'][-1].content}]", flush=True)
print()
