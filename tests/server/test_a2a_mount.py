"""`agentforge serve --a2a`: every served graph is also an A2A agent at /a2a/<name>, behind the
server's API keys; an agent on the embedded model streams its tokens to the A2A client."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from agentforge.a2a import RemoteAgent, RemoteAgentError
from agentforge.agents import EngineChatModel, ScriptedChatModel, create_react_agent
from agentforge.server import ServerConfig, create_app
from agentforge.tools.servers.calculator import calculate


@pytest.fixture(scope="module")
def base_url(server_llm):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    calc = create_react_agent(ScriptedChatModel([{"tool_calls": [{"name": "calculate", "args": {"expression": "6*7"}}]},
                                                 "6 * 7 is 42."]), [calculate], name="calc")
    chat = create_react_agent(EngineChatModel.over(server_llm, max_tokens=12, temperature=0.0), [], name="chat")
    story = create_react_agent(EngineChatModel.over(server_llm, max_tokens=1500, temperature=0.8), [], name="story")
    config = ServerConfig(a2a=True, port=port, api_keys=["key-1"])
    app = create_app(server_llm, "smollm2-135m", config=config, graphs={"calc": calc, "chat": chat, "story": story})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_each_graph_is_an_a2a_agent_behind_the_keys(base_url):
    card = httpx.get(f"{base_url}/a2a/calc/.well-known/agent-card.json").json()
    assert card["name"] == "calc" and [s["id"] for s in card["skills"]] == ["calculate"]
    assert [i["url"] for i in card["supportedInterfaces"]] == [f"{base_url}/a2a/calc", f"{base_url}/a2a/calc/rest"]
    assert "bearer" in card["securitySchemes"]
    refused = httpx.post(f"{base_url}/a2a/calc", json={}, headers={"A2A-Version": "1.0"})
    assert refused.status_code == 401
    assert httpx.get(f"{base_url}/health").status_code == 200  # the rest of the server is unchanged

    async def main():
        with pytest.raises(RemoteAgentError):
            await RemoteAgent(f"{base_url}/a2a/calc", retries=0).send("6*7?")
        reply = await RemoteAgent(f"{base_url}/a2a/calc", token="key-1").send("What is 6*7?")
        assert (reply.state, reply.text) == ("completed", "6 * 7 is 42.")
        rest = await RemoteAgent(f"{base_url}/a2a/calc", api_key="key-1", binding="HTTP+JSON").get(reply.task_id)
        assert rest.state == "completed"

    asyncio.run(main())


def test_the_embedded_model_streams_tokens_over_a2a(base_url, server_llm):
    async def main():
        remote = RemoteAgent(f"{base_url}/a2a/chat", token="key-1")
        events = [e async for e in remote.stream("Say hello.")]
        pieces = [e.text for e in events if e.kind == "text"]
        assert len(pieces) >= 2  # token by token, not one block
        assert events[-1].reply.state == "completed"
        assert "".join(pieces).strip() == events[-1].reply.text.strip() != ""

    blocks = server_llm.engine.block_manager
    asyncio.run(main())
    assert blocks.num_free_blocks == len(blocks.blocks)  # no KV blocks held after the task


def test_cancel_stops_generation_and_frees_the_kv_cache(base_url, server_llm):
    blocks = server_llm.engine.block_manager

    async def main():
        remote = RemoteAgent(f"{base_url}/a2a/story", token="key-1")
        stream = remote.stream("Write a very long story about a lighthouse keeper.")
        task_id = None
        async for event in stream:
            if event.kind == "text":  # generating: the engine holds blocks
                task_id = event.task_id
                break
        assert blocks.num_free_blocks < len(blocks.blocks)
        reply = await remote.cancel(task_id)
        await stream.aclose()
        assert reply.state == "canceled"
        for _ in range(100):
            if blocks.num_free_blocks == len(blocks.blocks):
                break
            await asyncio.sleep(0.05)
        assert blocks.num_free_blocks == len(blocks.blocks)
        assert (await remote.get(task_id)).state == "canceled"

    asyncio.run(main())

