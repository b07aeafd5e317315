"""`make demo`'s entry point, `agentforge demo`, end to end: the server comes up with the chat app and
the demo agent, which answers an arithmetic request through the calculator and searches the project's
docs (its knowledge base, indexed at start) on the embedded SmolLM2."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest


@pytest.mark.slow
def test_demo_serves_the_chat_app_and_an_agent_that_calculates_and_searches_the_docs():
    from langgraph_sdk import get_sync_client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = subprocess.Popen([sys.executable, "-m", "agentforge.cli", "demo", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = demo.stdout.readline()
        while banner and "AgentForge demo" not in banner:
            banner = demo.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in banner
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert "AgentForge chat" in httpx.get(url).text
        client = get_sync_client(url=url, api_key=None)
        assert {a["assistant_id"] for a in client.assistants.search()} == {"agent", "agent-approval"}
        thread = client.threads.create()
        out = client.runs.wait(thread["thread_id"], "agent", input={
            "messages": [{"role": "user", "content": "Compute 1234 * 5678 with the calculator."}]})
        messages = out["messages"]
        calls = [c for m in messages if m["type"] == "ai" for c in m["tool_calls"]]
        assert calls[0]["name"] == "calculate" and "7006652" in [m["content"] for m in messages if m["type"] == "tool"]
        assert "7006652" in messages[-1]["content"]

        out = client.runs.wait(client.threads.create()["thread_id"], "agent", input={
            "messages": [{"role": "user", "content": "Search the docs for the checkpointer."}]})
        calls = [c for m in out["messages"] if m["type"] == "ai" for c in m["tool_calls"]]
        results = [m["content"] for m in out["messages"] if m["type"] == "tool"]
        assert calls[0]["name"] == "search_docs"
        assert re.match(r"\[1\] \S+/docs/\S+\.md", results[0]), results
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=30)
