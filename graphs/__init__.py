"""AgentForge's graph runtime: LangGraph's StateGraph API and Pregel semantics, leaner and durable.

Port a LangGraph program by changing its imports to `agentforge.graphs`.
"""

from .cache import InMemoryCache
from .checkpoint import BaseCheckpointSaver, Checkpoint, CheckpointTuple, InMemorySaver
from .graph import StateGraph
from .messages import REMOVE_ALL_MESSAGES, MessagesState, RemoveMessage, add_messages
from .pregel import CompiledStateGraph
from .runtime import Runtime, get_config, get_message_writer, get_runtime, get_store, get_stream_writer, interrupt
from .sqlite import SqliteSaver
from .state import RemainingSteps
from .types import (
    END,
    START,
    CachePolicy,
    Command,
    EmptyInputError,
    GraphError,
    GraphRecursionError,
    GraphValidationError,
    Interrupt,
    InvalidUpdateError,
    Overwrite,
    PregelTask,
    RetryPolicy,
    Send,
    StateSnapshot,
)

MemorySaver = InMemorySaver

__all__ = [
    "BaseCheckpointSaver",
    "CachePolicy",
    "Checkpoint",
    "CheckpointTuple",
    "Command",
    "CompiledStateGraph",
    "END",
    "EmptyInputError",
    "GraphError",
    "GraphRecursionError",
    "GraphValidationError",
    "InMemoryCache",
    "InMemorySaver",
    "Interrupt",
    "InvalidUpdateError",
    "MemorySaver",
    "MessagesState",
    "Overwrite",
    "PregelTask",
    "REMOVE_ALL_MESSAGES",
    "RemainingSteps",
    "RemoveMessage",
    "RetryPolicy",
    "Runtime",
    "START",
    "Send",
    "SqliteSaver",
    "StateGraph",
    "StateSnapshot",
    "add_messages",
    "get_config",
    "get_message_writer",
    "get_runtime",
    "get_store",
    "get_stream_writer",
    "interrupt",
]
