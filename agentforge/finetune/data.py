"""Training data: JSONL rows in the formats people already have, read into a few plain shapes.

Formats (LlamaFactory's and TRL's conventions), detected from the first row's keys or named:
- `openai`: `{"messages": [...], "tools": [...]}` — OpenAI chat, tool calls and results included;
- `sharegpt`: `{"conversations": [{"from": "human"|"gpt"|"system"|"function_call"|"observation",
  "value": ...}], "system": ..., "tools": ...}`;
- `alpaca`: `{"instruction", "input", "output", "system", "history": [[question, answer], ...]}`;
- `preference`: `{"prompt", "chosen", "rejected"}`, each a string or a list of messages;
- `feedback`: `{"prompt", "completion", "label"}` — one reply marked good (true) or bad (false),
  unpaired (KTO; TRL's "unpaired preference");
- `prompt`: `{"prompt", ...}` — prompt-only rows for RL; every other key goes to the reward function.

A malformed row never stops a run: it is skipped and reported with its line number. A file with
no valid row is an error that names the first problems.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agentforge.engine.protocol import ChatMessage
from agentforge.engine.tool_schema import tool_specs

FORMATS = ("openai", "sharegpt", "alpaca", "preference", "feedback", "prompt")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "system": "system", "function_call": "assistant", "observation": "tool"}


class DatasetError(ValueError):
    """A dataset that cannot be used at all (missing file, unknown format, no valid row)."""


@dataclass(slots=True)
class Conversation:
    """A chat to learn from: the loss falls on its assistant turns."""

    messages: list[dict]
    tools: list[dict] | None = None
    line: int = 0  # where the row is in its file


@dataclass(slots=True)
class Preference:
    """A prompt with a preferred and a rejected assistant reply."""

    prompt: list[dict]
    chosen: list[dict]
    rejected: list[dict]
    tools: list[dict] | None = None
    line: int = 0


@dataclass(slots=True)
class Feedback:
    """A prompt and one reply, marked desirable or not (KTO learns from such unpaired judgements)."""

    prompt: list[dict]
    completion: list[dict]
    label: bool
    tools: list[dict] | None = None
    line: int = 0


@dataclass(slots=True)
class Prompt:
    """A prompt for RL; `extra` (e.g. the answer a verifier checks) goes to the reward function."""

    prompt: list[dict]
    extra: dict[str, Any] = field(default_factory=dict)
    line: int = 0


Row = Conversation | Preference | Feedback | Prompt


@dataclass(slots=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class Dataset:
    """The valid rows of a file, and why the others were skipped."""

    path: Path
    format: str
    rows: list[Row]
    skipped: list[RowError]

    def summary(self) -> str:
        text = f"{self.path}: {len(self.rows)} {self.format} rows"
        if self.skipped:
            shown = "; ".join(map(str, self.skipped[:5]))
            more = f" (and {len(self.skipped) - 5} more)" if len(self.skipped) > 5 else ""
            text += f", {len(self.skipped)} skipped — {shown}{more}"
        return text


def read_dataset(path: str | Path, format: str = "auto") -> Dataset:
    """Read a JSONL file of one of `FORMATS` ("auto" detects it from the first row that parses)."""
    path = Path(path)
    if format != "auto" and format not in FORMATS:
        raise DatasetError(f"unknown dataset format {format!r}; use one of {['auto', *FORMATS]}")
    if not path.is_file():
        raise DatasetError(f"dataset {path} does not exist")
    rows: list[Row] = []
    skipped: list[RowError] = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("a row must be a JSON object")
                if format == "auto":
                    format = detect_format(record)
                row = _PARSERS[format](record)
                row.line = number
                rows.append(row)
            except json.JSONDecodeError as exc:
                skipped.append(RowError(number, f"not JSON ({exc.msg})"))
            except ValidationError as exc:
                first = exc.errors()[0]
                skipped.append(RowError(number, f"{'.'.join(map(str, first['loc']))}: {first['msg']}"))
            except (ValueError, TypeError, KeyError) as exc:
                skipped.append(RowError(number, str(exc) or type(exc).__name__))
    if not rows:
        problems = "; ".join(map(str, skipped[:5])) or "the file is empty"
        raise DatasetError(f"{path} has no valid rows: {problems}")
    return Dataset(path, format, rows, skipped)


def detect_format(record: dict) -> str:
    if "messages" in record:
        return "openai"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record:
        return "alpaca"
    if "chosen" in record and "rejected" in record:
        return "preference"
    if "completion" in record and "label" in record:
        return "feedback"
    if "prompt" in record:
        return "prompt"
    raise ValueError(f"cannot tell the format from the keys {sorted(record)}; name it with `format`")


# --- one parser per format --------------------------------------------------------------------


def _messages(value: Any, what: str) -> list[dict]:
    if isinstance(value, str) and value.strip():
        return [{"role": "user" if what == "prompt" else "assistant", "content": value}]
    if not isinstance(value, list) or not value:
        raise ValueError(f"{what} must be a non-empty string or a non-empty list of messages")
    return [ChatMessage.model_validate(m).model_dump(exclude_none=True) for m in value]


def _tools(value: Any) -> list[dict] | None:
    if value in (None, [], ""):
        return None
    if isinstance(value, str):  # ShareGPT keeps tools as a JSON string
        value = json.loads(value)
    return tool_specs(value)


def _conversation(messages: list[dict], tools: list[dict] | None) -> Conversation:
    if not any(m["role"] == "assistant" and (m.get("content") or m.get("tool_calls")) for m in messages):
        raise ValueError("no assistant turn to learn from")
    if messages[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's")
    return Conversation(messages, tools)


def _openai(record: dict) -> Conversation:
    return _conversation(_messages(record["messages"], "messages"), _tools(record.get("tools")))


def _sharegpt(record: dict) -> Conversation:
    turns = record["conversations"]
    if not isinstance(turns, list) or not turns:
        raise ValueError("conversations must be a non-empty list")
    messages = [{"role": "system", "content": record["system"]}] if record.get("system") else []
    calls = 0
    for turn in turns:
        role = _SHAREGPT_ROLES.get(turn.get("from"))
        if role is None or not isinstance(turn.get("value"), str):
            raise ValueError(f"turn {turn!r} needs a known 'from' ({sorted(_SHAREGPT_ROLES)}) and a string 'value'")
        if turn["from"] == "function_call":
            called = json.loads(turn["value"])
            tool_calls = []
            for call in called if isinstance(called, list) else [called]:
                calls += 1
                tool_calls.append({"id": f"call_{calls}", "type": "function", "function": {
                    "name": call["name"], "arguments": json.dumps(call.get("arguments", {}))}})
            messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
        elif role == "tool":
            messages.append({"role": "tool", "content": turn["value"], "tool_call_id": f"call_{calls}"})
        else:
            messages.append({"role": role, "content": turn["value"]})
    return _conversation(_messages(messages, "conversations"), _tools(record.get("tools")))


def _alpaca(record: dict) -> Conversation:
    instruction, output = record["instruction"], record["output"]
    if not isinstance(instruction, str) or not isinstance(output, str) or not output:
        raise ValueError("instruction and output must be strings, output non-empty")
    messages = [{"role": "system", "content": record["system"]}] if record.get("system") else []
    for question, answer in record.get("history") or []:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    query = "\n".join(part for part in (instruction, record.get("input") or "") if part)
    messages += [{"role": "user", "content": query}, {"role": "assistant", "content": output}]
    return _conversation(messages, None)


def _preference(record: dict) -> Preference:
    prompt = _messages(record["prompt"], "prompt")
    chosen, rejected = _messages(record["chosen"], "chosen"), _messages(record["rejected"], "rejected")
    for name, reply in (("chosen", chosen), ("rejected", rejected)):
        if [m["role"] for m in reply] != ["assistant"]:
            raise ValueError(f"{name} must be one assistant reply")
    if prompt[-1]["role"] != "user":
        raise ValueError("the prompt must end with a user turn")
    return Preference(prompt, chosen, rejected, _tools(record.get("tools")))


def _feedback(record: dict) -> Feedback:
    prompt = _messages(record["prompt"], "prompt")
    if prompt[-1]["role"] != "user":
        raise ValueError("the prompt must end with a user turn")
    if not isinstance(record["label"], bool):
        raise ValueError(f"label must be true (a good reply) or false (a bad one), got {record['label']!r}")
    return Feedback(prompt, _messages(record["completion"], "completion"), record["label"], _tools(record.get("tools")))


def _prompt(record: dict) -> Prompt:
    prompt = _messages(record["prompt"], "prompt")
    if prompt[-1]["role"] != "user":
        raise ValueError("the prompt must end with a user turn")
    return Prompt(prompt, {k: v for k, v in record.items() if k != "prompt"})


_PARSERS = {"openai": _openai, "sharegpt": _sharegpt, "alpaca": _alpaca, "preference": _preference,
            "feedback": _feedback, "prompt": _prompt}
