"""Human approval of one tool call: interrupt, then approve, edit or reject as the human answered."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agentforge.engine.protocol import ChatMessage, ToolCall

ANSWERS = ("approve", "edit", "reject")


def ask_approval(call: ToolCall, interrupt: Callable[[Any], Any]) -> tuple[ToolCall, ChatMessage | None]:
    """Interrupt with the call; returns the call to run (edited or not) and, when the human
    rejected it, the tool message that tells the model so. An answer that is not understood asks
    again, saying what was wrong — the run keeps going."""
    request = {"type": "tool_approval", "tool_call": {"id": call.id, "name": call.function.name,
                                                      "args": _args(call)}, "allowed": list(ANSWERS)}
    while True:
        answer = interrupt(request)
        try:
            return _apply(call, answer)
        except ValueError as exc:
            request = {**request, "error": str(exc)}


def _apply(call: ToolCall, answer: Any) -> tuple[ToolCall, ChatMessage | None]:
    kind = answer if isinstance(answer, str) else answer.get("type") if isinstance(answer, dict) else None
    if kind == "approve":
        return call, None
    if kind == "edit":
        args = answer.get("args") if isinstance(answer, dict) else None
        if not isinstance(args, dict):
            raise ValueError("an 'edit' answer needs 'args': a JSON object of the call's new arguments")
        edited = call.model_copy(update={"function": call.function.model_copy(update={"arguments": json.dumps(args)})})
        return edited, None
    if kind == "reject":
        reason = answer.get("message") if isinstance(answer, dict) else None
        if reason is not None and not isinstance(reason, str):
            raise ValueError("a 'reject' answer's 'message' must be a string")
        content = f"The user rejected this call of {call.function.name!r}" + (f": {reason}" if reason else ".")
        return call, ChatMessage(role="tool", tool_call_id=call.id, name=call.function.name, content=content,
                                 status="error")
    raise ValueError(f"answer with 'approve', {{'type': 'edit', 'args': {{...}}}} or {{'type': 'reject', "
                     f"'message': ...}}; got {answer!r}")


def _args(call: ToolCall) -> Any:
    try:
        return json.loads(call.function.arguments or "{}")
    except json.JSONDecodeError:
        return call.function.arguments
