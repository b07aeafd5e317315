"""Agent2Agent (A2A 1.0): serve any compiled graph or agent as an A2A server, and call any A2A
agent as a graph node or an agent's tool. Built on the official `a2a-sdk`."""

from .card import agent_card
from .client import RemoteAgent, RemoteAgentError, RemoteReply
from .executor import GraphAgentExecutor
from .server import A2AServer

__all__ = ["A2AServer", "GraphAgentExecutor", "RemoteAgent", "RemoteAgentError", "RemoteReply", "agent_card"]
