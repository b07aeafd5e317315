"""Agents: one chat-model interface over the embedded engine or any OpenAI-compatible endpoint,
and ready-made agents that are ordinary compiled graphs."""

from .memory import BaseStore, InMemoryStore, Item, memory_tools
from .memory_sqlite import SqliteStore
from .model import ChatChunk, ChatModel, as_chat_model
from .openai_model import OpenAIChatModel
from .planning import create_plan_and_execute
from .react import AgentState, create_react_agent
from .reasoning import create_cot_agent, create_reflection_agent
from .scripted import ScriptedChatModel
from .team import Agent, create_supervisor, create_swarm
from .text_react import TextReActModel
from .trim import summarize_history, trim_messages


def __getattr__(name: str):
    if name == "EngineChatModel":  # imports torch: only when asked for
        from .engine_model import EngineChatModel

        return EngineChatModel
    if name == "PostgresStore":  # needs psycopg (agentforge[postgres])
        from .memory_postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Agent", "AgentState", "BaseStore", "ChatChunk", "ChatModel", "EngineChatModel", "InMemoryStore", "Item",
           "OpenAIChatModel", "PostgresStore", "ScriptedChatModel", "SqliteStore", "TextReActModel", "as_chat_model", "create_cot_agent",
           "create_plan_and_execute", "create_react_agent", "create_reflection_agent", "create_supervisor", "create_swarm",
           "memory_tools", "summarize_history", "trim_messages"]
