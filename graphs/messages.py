"""A message list as graph state: `add_messages` appends, replaces by id and removes; `MessagesState`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, TypedDict

from agentforge.engine.protocol import ChatMessage

REMOVE_ALL_MESSAGES = "__remove_all__"


@dataclass(slots=True, frozen=True)
class RemoveMessage:
    """Write it to a messages key to delete the message with this id (`REMOVE_ALL_MESSAGES`: all)."""

    id: str


Messages = ChatMessage | dict | str | RemoveMessage


def _coerce(message: Messages) -> ChatMessage | RemoveMessage:
    if isinstance(message, (ChatMessage, RemoveMessage)):
        return message
    if isinstance(message, str):
        return ChatMessage(role="user", content=message)
    if isinstance(message, dict):
        return ChatMessage.model_validate(message)
    raise TypeError(f"a message must be a ChatMessage, a dict, a string or a RemoveMessage, got {type(message).__name__}")


def add_messages(left: Messages | Sequence[Messages], right: Messages | Sequence[Messages]) -> list[ChatMessage]:
    """Merge two message lists: a message whose id is already on the left replaces it, a
    `RemoveMessage` deletes one (or all), anything else is appended. Messages without an id get one.

    Appending keeps the left list's message objects, so a checkpointer stores only the new tail.
    """
    left = [_coerce(m) for m in ([left] if isinstance(left, (ChatMessage, dict, str)) else left)]
    right = [_coerce(m) for m in ([right] if isinstance(right, (ChatMessage, dict, str, RemoveMessage)) else right)]
    for i, m in enumerate(left):
        if isinstance(m, ChatMessage) and m.id is None:
            left[i] = m.model_copy(update={"id": str(uuid.uuid4())})
    merged = list(left)
    index = {m.id: i for i, m in enumerate(merged)}
    removed: set[str] = set()
    for m in right:
        if isinstance(m, RemoveMessage):
            if m.id == REMOVE_ALL_MESSAGES:
                merged, index, removed = [], {}, set()
                continue
            if m.id not in index:
                raise ValueError(f"Attempting to delete a message with an ID that doesn't exist ('{m.id}')")
            removed.add(m.id)
            continue
        if m.id is None:
            m = m.model_copy(update={"id": str(uuid.uuid4())})
        if m.id in index:
            merged[index[m.id]] = m
            removed.discard(m.id)
        else:
            index[m.id] = len(merged)
            merged.append(m)
    return [m for m in merged if m.id not in removed] if removed else merged


class MessagesState(TypedDict):
    """State with one key, `messages`, that `add_messages` folds."""

    messages: Annotated[list[ChatMessage], add_messages]

