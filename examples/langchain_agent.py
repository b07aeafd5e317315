"""LangChain and LangGraph code on AgentForge: LangGraph's prebuilt ReAct agent on the embedded
engine with a LangChain tool, an LCEL chain streaming tokens, and our knowledge base as a
LangChain retriever. Needs `pip install 'agentforge[langchain]'`.

    python examples/langchain_agent.py
"""

import warnings
from pathlib import Path

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent

from agentforge.integrations.langchain import AgentForgeRetriever, ChatAgentForge
from agentforge.rag import KnowledgeBase


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is 21 degrees and sunny in {city}."


llm = ChatAgentForge(model="smollm2-135m")  # the embedded engine; calls are grammar-constrained

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # LangGraph 1.x points to langchain.agents.create_agent, the same loop
    agent = create_react_agent(llm, [get_weather])
for message in agent.invoke({"messages": [("user", "What is the weather in Paris?")]})["messages"]:
    print(f"{message.type:>5}: {message.content or message.tool_calls}")

chain = ChatPromptTemplate.from_messages([("user", "Give one fun fact about {animal}.")]) | llm | StrOutputParser()
for token in chain.stream({"animal": "octopuses"}):
    print(token, end="", flush=True)
print()

kb = KnowledgeBase("agentforge-docs")  # the demo's knowledge base: only changed files are embedded again
kb.ingest(Path(__file__).resolve().parents[1] / "docs", patterns=["*.md"])
retriever = AgentForgeRetriever(retriever=kb.as_retriever(k=2))
for doc in retriever.invoke("How do I resume a graph after an interrupt?"):
    print(Path(doc.metadata["source"]).name, "|", doc.metadata["section"])
