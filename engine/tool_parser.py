"""Tool-call formats and the incremental parser that splits model output into text and calls.

A `ToolFormat` says how a model family writes calls: Hermes `<tool_call>` blocks, SmolLM2's
`<tool_call>[...]</tool_call>` list, Llama 3 bare JSON, Mistral `[TOOL_CALLS][...]`.
`ToolCallParser` turns output, streamed in any chunks or whole, into text and `ToolCall`s; a call
that repeats an earlier call of the same message is held back, never emitted, and ends the message.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import regex

from .protocol import ToolCall, ToolCallDelta, ToolCallFunction


@dataclass(frozen=True, slots=True)
class ToolFormat:
    """How a model family writes tool calls.

    Hermes: `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>` per call.
    SmolLM2: `<tool_call>[\\n{"name": ..., "arguments": {...}},\\n...\\n]</tool_call>` (an empty
    list when no call is needed). Llama 3: `{"name": ..., "parameters": {...}}` as the whole
    answer, calls separated by "; " (optionally after `<|python_tag|>`). Mistral:
    `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`.
    """

    name: str
    open: str  # opens a region of calls in running text
    close: str = ""  # closes it; empty: the region ends after its JSON
    arguments_key: str = "arguments"
    in_list: bool = False  # the region is a JSON array of calls
    bare_json: bool = False  # a "{" as the first thing in the answer also opens calls (Llama 3)
    separator: str = "\n"  # between parallel calls
    list_open: str = "["  # how the list of calls opens and closes (in_list formats)
    list_close: str = "]"

    @property
    def opener(self) -> str:
        """What a reply that calls tools starts with."""
        return "{" if self.bare_json else self.open


HERMES = ToolFormat("hermes", "<tool_call>", "</tool_call>")
SMOLLM2 = ToolFormat("smollm2", "<tool_call>", "</tool_call>", in_list=True, separator=",\n", list_open="[\n",
                     list_close="\n]")
LLAMA3 = ToolFormat("llama3_json", "<|python_tag|>", arguments_key="parameters", bare_json=True, separator="; ")
MISTRAL = ToolFormat("mistral", "[TOOL_CALLS]", in_list=True, separator=", ")
TOOL_FORMATS = {f.name: f for f in (HERMES, SMOLLM2, LLAMA3, MISTRAL)}

_CALL_HEADER = regex.compile(r'\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:arguments|parameters)"\s*:\s*\{')


@dataclass(slots=True)
class ParsedDelta:
    """What one piece of model output added: text and tool-call deltas."""

    text: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)


@dataclass(slots=True)
class _Pending:
    """A call being read whose text so far repeats the start of an earlier call: held back."""

    name: str
    arguments: str = ""


class ToolCallParser:
    """Splits model output, fed in any chunks, into text and tool calls.

    `feed` returns what is certain so far, holding back a partial opening tag and trailing
    whitespace; `finish` flushes the rest. A call's name (with its id) comes out as soon as it is
    complete and differs from the calls before it, its arguments as fragments as they arrive. A
    call identical to an earlier one is dropped and sets `repeated`: the message is over. A call
    whose JSON does not have the usual `{"name": ..., "arguments": {...}}` shape is parsed when its
    object is complete; output that is not a call at all comes back as text, but the unfinished
    start of a call never does. Decisions depend only on the text, never on how it was chunked,
    so the deltas of any chunking concatenate to the same `content` and `tool_calls`.
    """

    def __init__(self, fmt: ToolFormat = HERMES, id_prefix: str | None = None) -> None:
        self.format = fmt
        self.id_prefix = id_prefix or uuid.uuid4().hex[:16]
        self.content = ""
        self.tool_calls: list[ToolCall] = []
        self.repeated = False  # the model repeated a call: nothing after it counts
        self._buf = ""
        self._state = "text"
        self._at_start = True  # nothing but whitespace so far (a Llama 3 answer may open with "{")
        self._strip = False  # drop the whitespace that follows a region of calls
        self._in_list = False
        self._pending: _Pending | None = None
        self._depth, self._in_str, self._esc, self._scanned = 0, False, False, 0
        self._delta = ParsedDelta()

    def feed(self, text: str) -> ParsedDelta:
        self._buf += text
        return self._run(final=False)

    def finish(self) -> ParsedDelta:
        return self._run(final=True)

    def _run(self, final: bool) -> ParsedDelta:
        self._delta = ParsedDelta()
        handlers = {"text": self._text, "region": self._region, "header": self._header,
                    "arguments": self._arguments, "trailer": self._trailer, "object": self._object,
                    "junk": self._junk, "done": self._done}
        while handlers[self._state](final):
            pass
        return self._delta

    # output

    def _emit_text(self, text: str) -> None:
        if text:
            self._at_start = self._at_start and not text.strip()
            self.content += text
            self._delta.text += text

    def _start_call(self, name: str) -> None:
        """A call's name is known: emit it, or hold it back while it could be a repeat."""
        self._at_start = False
        self._pending = _Pending(name)
        self._release_if_new()

    def _add_arguments(self, fragment: str) -> None:
        if self._pending is not None:
            self._pending.arguments += fragment
            self._release_if_new()
            return
        call = self.tool_calls[-1]
        call.function.arguments += fragment
        last = self._delta.tool_calls[-1] if self._delta.tool_calls else None
        if last is not None and last.index == len(self.tool_calls) - 1:
            last.arguments += fragment
        else:
            self._delta.tool_calls.append(ToolCallDelta(len(self.tool_calls) - 1, arguments=fragment))

    def _release_if_new(self) -> None:
        pending = self._pending
        if any(c.function.name == pending.name and c.function.arguments.startswith(pending.arguments)
               for c in self.tool_calls):
            return
        self._pending = None
        index = len(self.tool_calls)
        call_id = f"call_{self.id_prefix}{index}"
        self.tool_calls.append(ToolCall(id=call_id, function=ToolCallFunction(name=pending.name,
                                                                            arguments=pending.arguments)))
        self._delta.tool_calls.append(ToolCallDelta(index, call_id, pending.name, pending.arguments))

    def _end_call(self) -> bool:
        """The call just read is complete; a repeat of an earlier call ends the message."""
        if self._pending is None:
            return False
        self._pending = None
        self.repeated = True
        self._state = "done"
        return True

    def _consume(self, n: int) -> str:
        taken, self._buf = self._buf[:n], self._buf[n:]
        return taken

    def _goto(self, state: str) -> bool:
        self._state = state
        self._depth, self._in_str, self._esc, self._scanned = 0, False, False, 0
        return True

    # states

    def _done(self, final: bool) -> bool:
        self._buf = ""
        return False

    def _text(self, final: bool) -> bool:
        fmt = self.format
        if self._strip:
            self._buf = self._buf.lstrip()
            if not self._buf:
                return False
            self._strip = False
        if fmt.bare_json and self._at_start:
            if self._buf.lstrip().startswith("{"):
                self._consume(len(self._buf) - len(self._buf.lstrip()))
                return self._goto("region")
            if not self._buf.strip() and not final:
                return False
        i = self._buf.find(fmt.open)
        if i >= 0:
            self._emit_text(self._consume(i).rstrip())
            self._consume(len(fmt.open))
            self._in_list = False
            return self._goto("region")
        if final:  # a call's opening tag cut off by the end is not text
            rest = self._consume(len(self._buf))
            cut_tag = self.tool_calls and rest.strip() and fmt.open.startswith(rest.strip())
            self._emit_text("" if cut_tag else rest)
            return False
        certain = self._buf[: len(self._buf) - _partial_tag(self._buf, fmt.open)]
        self._emit_text(self._consume(len(certain.rstrip())))  # trailing whitespace may precede a call
        return False

    def _region(self, final: bool) -> bool:
        skip = len(self._buf) - len(self._buf.lstrip(" \t\r\n,;"))
        self._consume(skip)
        buf, close = self._buf, self.format.close
        if not buf:
            return False
        if close and buf.startswith(close):
            self._consume(len(close))
            self._strip = True
            return self._goto("text")
        if close and close.startswith(buf):  # a partial closing tag: wait for the rest (dropped at the end)
            if final:
                self._consume(len(buf))
            return False
        if buf[0] == "[" and self.format.in_list and not self._in_list:
            self._in_list = True
            self._consume(1)
            return True
        if buf[0] == "]" and self._in_list:
            self._in_list = False
            self._consume(1)
            if close:  # the list is followed by the closing tag
                return True
            self._strip = True
            return self._goto("text")
        if buf[0] == "{":
            return self._goto("header")
        return self._goto("junk" if close else "text")  # not a call

    def _junk(self, final: bool) -> bool:
        """Inside a call's tags but not a call: text, up to the closing tag."""
        close = self.format.close
        i = self._buf.find(close)
        if i >= 0:
            self._emit_text(self._consume(i).rstrip())
            self._consume(len(close))
            self._strip = True
            return self._goto("text")
        if final:
            self._emit_text(self._consume(len(self._buf)))
            self._goto("text")
            return False
        certain = self._buf[: len(self._buf) - _partial_tag(self._buf, close)]
        self._emit_text(self._consume(len(certain.rstrip())))
        return False

    def _header(self, final: bool) -> bool:
        match = _CALL_HEADER.match(self._buf, partial=True)
        if match is not None and match.partial:
            if not final:
                return False
            return self._goto("object")  # cut off mid-header
        if match is None:
            return self._goto("object")
        self._start_call(json.loads(f'"{match.group(1)}"'))
        self._consume(match.end() - 1)  # the arguments' "{" is the first argument fragment
        return self._goto("arguments")

    def _arguments(self, final: bool) -> bool:
        end = self._scan(self._buf)
        fragment = self._consume(len(self._buf) if end is None else end)
        if fragment:
            self._add_arguments(fragment)
        if end is None:
            return False
        if self._end_call():
            return True
        self._goto("trailer")
        self._depth = 1  # inside the call object, after its arguments
        return True

    def _trailer(self, final: bool) -> bool:
        end = self._scan(self._buf)
        self._consume(len(self._buf) if end is None else end)
        return end is not None and self._goto("region")

    def _object(self, final: bool) -> bool:
        end = self._scan(self._buf[self._scanned :])
        if end is None:
            self._scanned = len(self._buf)
            if final:  # an unfinished call is not text
                self._consume(len(self._buf))
                return self._goto("text")
            return False
        raw = self._consume(self._scanned + end)
        call = _as_call(raw)
        if call is None:
            self._emit_text(raw)
            return self._goto("region")
        self._start_call(call[0])
        self._add_arguments(call[1])
        return self._end_call() or self._goto("region")

    def _scan(self, text: str) -> int | None:
        """Advance the bracket scanner over `text`; the index just past the end of the JSON value
        being scanned, or None if it has not ended yet."""
        for i, c in enumerate(text):
            if self._esc:
                self._esc = False
            elif self._in_str:
                if c == "\\":
                    self._esc = True
                elif c == '"':
                    self._in_str = False
            elif c == '"':
                self._in_str = True
            elif c in "{[":
                self._depth += 1
            elif c in "}]":
                self._depth -= 1
                if self._depth == 0:
                    return i + 1
        return None


def _partial_tag(text: str, tag: str) -> int:
    """Length of the longest end of `text` that could be the start of `tag`."""
    return next((k for k in range(min(len(tag) - 1, len(text)), 0, -1) if text.endswith(tag[:k])), 0)


def _as_call(raw: str) -> tuple[str, str] | None:
    """(name, arguments JSON) if `raw` is a call object in any key order, else None."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        return obj["name"], args
    return (obj["name"], json.dumps(args)) if isinstance(args, dict) else None


def parse_tool_calls(text: str, fmt: ToolFormat = HERMES, id_prefix: str | None = None) -> tuple[str, list[ToolCall]]:
    """Content and tool calls of a whole model output (the same result as streaming it)."""
    parser = ToolCallParser(fmt, id_prefix)
    parser.feed(text)
    parser.finish()
    return parser.content, parser.tool_calls
