"""Two processes, one team: a supervisor graph here delegates to a research agent that runs in another
process and is reached over A2A, and streams that agent's progress as it works.

    python examples/a2a_supervisor.py "How do I serve a graph over A2A?"

The research agent is `agentforge a2a serve` with no graph: the demo agent (SmolLM2 on the embedded
engine, with a search over AgentForge's docs and a calculator). The supervisor needs no model: it
sends the question, prints the remote agent's steps and tokens as they arrive, and writes a report.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from agentforge.a2a import RemoteAgent
from agentforge.graphs import END, START, InMemorySaver, MessagesState, StateGraph


def start_research_agent(port: int, folder: Path) -> subprocess.Popen:
    """`agentforge a2a serve` in a child process; returns once its agent card is served."""
    agent = subprocess.Popen([sys.executable, "-m", "agentforge.cli", "a2a", "serve", "--port", str(port),
                              "--database", str(folder / "research.sqlite")], stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # the first start embeds the docs
    while time.time() < deadline:
        if agent.poll() is not None:
            raise SystemExit("the research agent exited")
        try:
            httpx.get(f"http://127.0.0.1:{port}/.well-known/agent-card.json", timeout=1).raise_for_status()
            return agent
        except httpx.HTTPError:
            time.sleep(0.5)
    agent.kill()
    raise SystemExit("the research agent did not start")


def supervisor(research: RemoteAgent):
    """START -> research (the remote agent) -> report -> END"""

    def report(state: dict) -> dict:
        answer = state["messages"][-1].content
        return {"messages": [{"role": "assistant", "content": f"Report from the research agent:\n{answer}"}]}

    graph = StateGraph(MessagesState)
    graph.add_node("research", research.as_node())
    graph.add_node("report", report)
    graph.add_edge(START, "research").add_edge("research", "report").add_edge("report", END)
    return graph.compile(checkpointer=InMemorySaver())


async def run(question: str, url: str) -> str:
    research = RemoteAgent(url)
    card = await research.card()
    print(f"delegating to {card.name!r} at {url} (skills: {', '.join(s.id for s in card.skills)})")
    team = supervisor(research)
    config = {"configurable": {"thread_id": "example"}}
    async for mode, chunk in team.astream({"messages": [question]}, config, stream_mode=["custom", "messages"]):
        if mode == "custom":
            print(f"\n  [{chunk['agent']}: {chunk['state']}{' after ' + chunk['node'] if chunk['node'] else ''}]",
                  flush=True)
        elif chunk[0].content:
            print(chunk[0].content, end="", flush=True)
    final = (await team.aget_state(config)).values["messages"][-1].content
    await research.aclose()
    return final


def main() -> None:
    question = " ".join(sys.argv[1:]) or "How do I serve a graph over A2A?"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        agent = start_research_agent(port, Path(folder))
        try:
            print("\n\n" + asyncio.run(run(question, f"http://127.0.0.1:{port}")))
        finally:
            agent.terminate()
            agent.wait(timeout=30)


if __name__ == "__main__":
    main()
