"""Graphs and client helpers shared by the A2A tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn
from a2a.client import ClientConfig, create_client
from a2a.helpers import new_text_message
from a2a.types import Role, SendMessageConfiguration, SendMessageRequest

from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.graphs import END, START, InMemorySaver, MessagesState, StateGraph, interrupt


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UvicornThread:
    def __init__(self, app, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 15
        while not self.server.started:
            assert time.time() < deadline, "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def calculator_agent(replies: list) -> object:
    """A ReAct agent with an `add` tool whose model follows `replies`."""
    return create_react_agent(ScriptedChatModel(replies), [add], checkpointer=InMemorySaver(), name="calculator")


def one_node_graph(node, state=MessagesState, name: str = "graph", checkpointer=None):
    """START -> node -> END, checkpointed (in memory unless given)."""
    graph = StateGraph(state)
    graph.add_node("node", node)
    graph.add_edge(START, "node")
    graph.add_edge("node", END)
    return graph.compile(checkpointer=checkpointer or InMemorySaver(), name=name)


def asking_graph(checkpointer=None):
    """A graph that asks for a name (`interrupt`) and then greets it."""

    def ask(state: dict) -> dict:
        name = interrupt("What is your name?")
        return {"messages": [{"role": "assistant", "content": f"Hello, {name}!"}]}

    return one_node_graph(ask, name="greeter", checkpointer=checkpointer)


async def sdk_client(url: str, binding: str = "JSONRPC", streaming: bool = True, **config):
    return await create_client(url, client_config=ClientConfig(streaming=streaming, supported_protocol_bindings=[binding],
                                                               **config))


def user_message(text: str, **fields):
    message = new_text_message(text, role=Role.ROLE_USER)
    for key, value in fields.items():
        setattr(message, key, value)
    return SendMessageRequest(message=message)


async def start_task(client, text: str):
    """Send `text` asking the server to return at once; the task, still running."""
    request = user_message(text)
    request.configuration.CopyFrom(SendMessageConfiguration(return_immediately=True))
    [response] = await collect(client.send_message(request))
    return response.task


async def collect(stream) -> list:
    return [chunk async for chunk in stream]


def run(coro):
    return asyncio.run(coro)
