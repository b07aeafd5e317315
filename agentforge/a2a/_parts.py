"""Conversions between A2A messages/parts (protobuf) and the plain values graphs and agents use."""

from __future__ import annotations

import json
from typing import Any

from a2a.helpers import get_data_parts, get_text_parts, new_data_part, new_text_part
from a2a.types import Message, Part, Role


def message_text(message: Message) -> str:
    """A message's text parts joined by newlines; data parts follow as compact JSON."""
    texts = get_text_parts(message.parts)
    texts += [json.dumps(data, ensure_ascii=False) for data in get_data_parts(message.parts)]
    return "\n".join(texts)


def message_value(message: Message) -> Any:
    """The value a message carries: its one data part when it has exactly one (e.g. an approval
    decision), else its text."""
    data = get_data_parts(message.parts)
    if len(data) == 1 and not get_text_parts(message.parts):
        return data[0]
    return message_text(message)


def value_parts(value: Any) -> list[Part]:
    """One part for a value: text for a string, data (JSON) for anything else."""
    if isinstance(value, str):
        return [new_text_part(value)]
    return [new_data_part(json.loads(json.dumps(value, default=str)))]


def agent_message(value: Any, *, task_id: str = "", context_id: str = "", message_id: str) -> Message:
    return Message(role=Role.ROLE_AGENT, parts=value_parts(value), task_id=task_id, context_id=context_id,
                   message_id=message_id)
