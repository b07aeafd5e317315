"""Short-term memory: `trim_messages` keeps what the model sees within a token budget, counted by
the model's own tokenizer (`EngineChatModel.count_tokens`) or any counter; `summarize_history`
replaces old turns in the thread by a summary."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agentforge.engine.protocol import ChatMessage
from agentforge.graphs import REMOVE_ALL_MESSAGES, RemoveMessage

from .model import ChatModel, Messages, to_messages


def trim_messages(messages: Messages, *, max_tokens: int,
                  token_counter: ChatModel | Callable[[Sequence[ChatMessage]], int],
                  include_system: bool = True, start_on: str = "user") -> list[ChatMessage]:
    """The most recent messages that fit in `max_tokens` (LangChain's strategy "last").

    The first system message is kept when `include_system` (it counts against the budget); the
    kept history starts at a `start_on` message, so it never opens with a tool result whose call
    was cut. Use it in a `prompt` function: `prompt=lambda s: trim_messages(s["messages"], ...)`.
    """
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    count = token_counter.count_tokens if isinstance(token_counter, ChatModel) else token_counter
    if not callable(count):
        raise TypeError("token_counter must be a function of the messages or a chat model with count_tokens")
    messages = to_messages(messages)
    system = messages[:1] if include_system and messages and messages[0].role == "system" else []
    rest = messages[len(system):]
    budget = max_tokens - (count(system) if system else 0)
    kept: list[ChatMessage] = []
    for message in reversed(rest):
        if count([message, *kept]) > budget:
            break
        kept.insert(0, message)
    while kept and kept[0].role != start_on:
        kept.pop(0)
    return [*system, *kept]


SUMMARIZE = ("Summarize the conversation below in a few sentences: the user's goals, the facts learned (tool "
             "results included) and what is still open. Write only the summary.")


def summarize_history(model: ChatModel, *, max_tokens: int,
                      token_counter: ChatModel | Callable[[Sequence[ChatMessage]], int] | None = None,
                      keep_last: int = 6) -> Callable:
    """A graph node (e.g. `create_react_agent(..., pre_model_hook=...)`) that, once the history
    outgrows `max_tokens`, replaces all but the last `keep_last` messages (cut at a user turn) by
    a summary the model writes. The thread's checkpoint then holds the summary, not the old turns.
    """
    if not isinstance(max_tokens, int) or max_tokens < 1 or not isinstance(keep_last, int) or keep_last < 1:
        raise ValueError("max_tokens and keep_last must be positive integers")
    counter = token_counter or model
    count = counter.count_tokens if isinstance(counter, ChatModel) else counter

    async def summarize(state) -> dict:
        messages = to_messages(state["messages"])
        if count(messages) <= max_tokens or len(messages) <= keep_last:
            return {}
        cut = len(messages) - keep_last
        while cut > 0 and messages[cut].role != "user":  # the kept part opens on a user turn
            cut -= 1
        if cut <= 0:
            return {}
        old = "\n".join(f"{m.role}: {m.content or ''}" + "".join(
            f" [calls {c.function.name}({c.function.arguments})]" for c in m.tool_calls or ()) for m in messages[:cut])
        summary = await model.ainvoke([ChatMessage(role="system", content=SUMMARIZE),
                                       ChatMessage(role="user", content=old)])
        note = ChatMessage(role="system", content=f"Summary of the earlier conversation: {summary.content or ''}")
        return {"messages": [RemoveMessage(REMOVE_ALL_MESSAGES), note, *messages[cut:]]}

    return summarize
