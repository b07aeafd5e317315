"""Function calling: tool specs, prompt rendering, constrained call grammars and an incremental parser.

Tools are OpenAI-style function specs (`{"type": "function", "function": {name, description,
parameters}}`); pydantic models and typed Python functions are converted to them. A model whose
chat template renders tools gets them through its template, in its own call format (Hermes
`<tool_call>`, Llama 3 JSON, Mistral `[TOOL_CALLS]`); any other model gets `BUILTIN_TOOL_PROMPT`
and the Hermes format. `tool_choice` becomes an llguidance grammar: `required` and a named
function allow only calls whose arguments match the schema; `auto` leaves text free but
constrains a call from the moment its opening tag appears. `ToolCallParser` turns the output,
streamed or whole, into text and tool calls.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import regex
from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from .errors import InvalidRequestError
from .protocol import ChatMessage, StructuredOutput, ToolCall, ToolCallDelta, ToolCallFunction
from .structured import JSON_DEFAULTS, closed_objects, json_schema_of

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")

# --- tool specs ------------------------------------------------------------------------------


def tool_spec(tool: dict | type[BaseModel] | Callable) -> dict:
    """An OpenAI function spec from an OpenAI tool dict, a bare `{name, parameters}` dict, a pydantic
    model class (its name, docstring and schema) or a typed function (its name, docstring and hints)."""
    if isinstance(tool, dict):
        function = tool.get("function", tool) if tool.get("type", "function") == "function" else None
        if not isinstance(function, dict):
            raise InvalidRequestError(f"unsupported tool type {tool.get('type')!r}; only 'function' tools exist")
        name, description = function.get("name"), function.get("description") or ""
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        parameters = json_schema_of(parameters)
    elif isinstance(tool, type) and issubclass(tool, BaseModel):
        name, description, parameters = tool.__name__, own_doc(tool), tool.model_json_schema()
        parameters.pop("title", None)
        parameters.pop("description", None)
    elif callable(tool):
        name, description, parameters = function_schema(tool)
    else:
        raise InvalidRequestError(f"a tool must be a dict, a pydantic model class or a function, got {type(tool).__name__}")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise InvalidRequestError(f"invalid tool name {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
    if not isinstance(description, str):
        raise InvalidRequestError(f"tool {name!r}: description must be a string")
    if parameters.get("type", "object") != "object":
        raise InvalidRequestError(f"tool {name!r}: parameters must be a JSON schema of type 'object'")
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def own_doc(cls: type | None) -> str:
    """A class's own docstring (not one inherited from BaseModel), cleaned; "" without one."""
    return inspect.cleandoc(cls.__doc__) if cls is not None and cls.__doc__ else ""


def tool_specs(tools: list) -> list[dict]:
    """`tool_spec` of each tool; names must be unique."""
    if not isinstance(tools, list) or not tools:
        raise InvalidRequestError("tools must be a non-empty list")
    specs = [tool_spec(t) for t in tools]
    names = [s["function"]["name"] for s in specs]
    if len(set(names)) != len(names):
        raise InvalidRequestError(f"tool names must be unique, got {names}")
    return specs


def function_schema(fn: Callable) -> tuple[str, str, dict]:
    """Name, description and parameters schema of a typed Python function (see `function_model`)."""
    name, description, model = function_model(fn)
    return name, description, model_parameters(model)


def function_model(fn: Callable, skip: tuple[str, ...] = ()) -> tuple[str, str, type[BaseModel]]:
    """Name, description and a pydantic model of the parameters of a typed Python function.

    The description is the docstring's text up to a Google-style `Args:` section, whose entries
    become the parameters' descriptions. `self`/`cls`, `*args`, `**kwargs` and the names in `skip`
    are not parameters.
    """
    doc = inspect.getdoc(fn) or ""
    description, arg_docs = _split_docstring(doc)
    fields: dict[str, Any] = {}
    hints = _type_hints(fn)
    for p in inspect.signature(fn).parameters.values():
        if p.name in ("self", "cls", *skip) or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(p.name, Any)
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (annotation, _field(default, arg_docs.get(p.name)))
    name = getattr(fn, "__name__", type(fn).__name__)
    try:
        model = create_model(f"{name}_args", **fields)
        model.model_json_schema()
    except Exception as exc:  # a hint pydantic cannot describe
        raise InvalidRequestError(f"tool {name!r}: cannot derive a JSON schema: {exc}") from exc
    return name, description, model


def model_parameters(model: type[BaseModel]) -> dict:
    """A pydantic model's JSON schema as tool parameters (without pydantic's generated titles)."""
    parameters = model.model_json_schema()
    parameters.pop("title", None)
    for prop in parameters.get("properties", {}).values():
        prop.pop("title", None)
    return parameters


def _type_hints(fn: Callable) -> dict:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        return getattr(fn, "__annotations__", {})


def _field(default, description: str | None) -> FieldInfo:
    """A pydantic field for a parameter; a `Field(...)` default keeps its constraints."""
    if isinstance(default, FieldInfo):
        field_info = copy.copy(default)
        field_info.description = field_info.description or description
        return field_info
    return Field(default, description=description)


def _split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    match = re.search(r"^(Args|Arguments|Parameters):\s*$", doc, re.M)
    if not match:
        return doc.strip(), {}
    description, section = doc[: match.start()].strip(), doc[match.end() :]
    args: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        if line and not line[0].isspace():  # the next section ("Returns:") ends this one
            break
        entry = re.match(r"^\s+(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$", line)
        if entry:
            current = entry.group(1)
            args[current] = entry.group(2).strip()
        elif current and line.strip():
            args[current] += " " + line.strip()
    return description, args


# --- call formats ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolFormat:
    """How a model family writes tool calls.

    Hermes: `<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>` per call.
    Llama 3: `{"name": ..., "parameters": {...}}` as the whole answer, calls separated by "; "
    (optionally after `<|python_tag|>`). Mistral: `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`.
    """

    name: str
    open: str  # opens a region of calls in running text
    close: str = ""  # closes it (Hermes); empty: the region ends after its JSON
    arguments_key: str = "arguments"
    in_list: bool = False  # the region is a JSON array of calls (Mistral)
    bare_json: bool = False  # a "{" as the first thing in the answer also opens calls (Llama 3)
    separator: str = "\n"  # between parallel calls


HERMES = ToolFormat("hermes", "<tool_call>", "</tool_call>")
LLAMA3 = ToolFormat("llama3_json", "<|python_tag|>", arguments_key="parameters", bare_json=True, separator="; ")
MISTRAL = ToolFormat("mistral", "[TOOL_CALLS]", in_list=True, separator=", ")
TOOL_FORMATS = {f.name: f for f in (HERMES, LLAMA3, MISTRAL)}

BUILTIN_TOOL_PROMPT = """You can call functions to answer. The functions are described in JSON inside <tools></tools>:
<tools>
{tools}
</tools>
To call functions, write one JSON object per call, each inside <tool_call></tool_call> tags:
<tool_call>
{{"name": "<function name>", "arguments": {{<arguments as a JSON object>}}}}
</tool_call>
Function results come back inside <tool_response></tool_response> tags. If no function fits, answer in plain text."""


def detect_format(chat_template: str | None) -> tuple[ToolFormat, bool]:
    """The call format of a chat template, and whether the template renders `tools` itself."""
    template = chat_template or ""
    if "tools" in template:
        if "<tool_call>" in template:
            return HERMES, True
        if "[TOOL_CALLS]" in template:
            return MISTRAL, True
        if "<|python_tag|>" in template or "ipython" in template:
            return LLAMA3, True
    return HERMES, False


# --- one request's tool configuration --------------------------------------------------------


@dataclass(slots=True)
class ToolCalling:
    """The tools of one chat request, how to render them and what output to allow."""

    tools: list[dict]
    choice: str  # "none", "auto", "required" or the name of the one function to call
    parallel: bool = True
    format: ToolFormat = HERMES
    template_renders_tools: bool = False

    @classmethod
    def create(
        cls, tools: list | None, tool_choice: str | dict | None, parallel_tool_calls: bool, chat_template: str | None
    ) -> ToolCalling | None:
        """Validate a request's `tools`/`tool_choice`; None when the request has no tools."""
        if not isinstance(parallel_tool_calls, bool):
            raise InvalidRequestError("parallel_tool_calls must be a boolean")
        if not tools:
            if tool_choice not in (None, "none"):
                raise InvalidRequestError("tool_choice needs tools")
            return None
        specs = tool_specs(tools)
        names = [s["function"]["name"] for s in specs]
        choice = "auto" if tool_choice is None else tool_choice
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
            if name not in names:
                raise InvalidRequestError(f"tool_choice names {name!r}, which is not among the tools {names}")
            choice = name
        elif choice not in ("none", "auto", "required"):
            raise InvalidRequestError(
                "tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}"
            )
        fmt, renders = detect_format(chat_template)
        return cls(specs, choice, parallel_tool_calls, fmt, renders)

    def render(self, messages: list[ChatMessage | dict]) -> tuple[list[dict], dict]:
        """Messages and template kwargs for the chat template, with the tools in the prompt."""
        return render_messages(messages, None if self.choice == "none" else self.tools, self.format, self.template_renders_tools)

    def constraint(self, answer: StructuredOutput | None = None) -> StructuredOutput | None:
        """The output grammar for this tool_choice. `answer` (a JSON response_format) constrains the
        text alternative of `auto`; it cannot be combined with `required` or a named function."""
        if self.choice == "none":
            return answer
        if answer is not None and self.choice != "auto":
            raise InvalidRequestError("response_format can only be combined with tool_choice 'auto' or 'none'")
        named = self.choice not in ("auto", "required")
        tools = [t for t in self.tools if t["function"]["name"] == self.choice] if named else self.tools
        grammar = call_grammar(tools, self.format, auto=self.choice == "auto", parallel=self.parallel and not named, answer=answer)
        return StructuredOutput(grammar=grammar)

    def parser(self) -> ToolCallParser | None:
        return None if self.choice == "none" else ToolCallParser(self.format)


def call_schema(tools: list[dict], arguments_key: str = "arguments") -> dict:
    """JSON schema of one call to any of `tools`: `{"name": <const>, arguments_key: <parameters>}`.
    Each tool's `$defs` are hoisted to the root under a per-tool prefix so `$ref`s still resolve."""
    defs: dict[str, Any] = {}
    options = []
    for spec in tools:
        fn = spec["function"]
        params = closed_objects(_hoist_defs(fn["parameters"], fn["name"], defs))
        options.append({
            "type": "object",
            "properties": {"name": {"const": fn["name"]}, arguments_key: params},
            "required": ["name", arguments_key],
            "additionalProperties": False,
        })
    schema: dict[str, Any] = options[0] if len(options) == 1 else {"anyOf": options}
    if defs:
        schema = {**schema, "$defs": defs}
    return {**schema, "x-guidance": JSON_DEFAULTS}


def _hoist_defs(schema: dict, prefix: str, defs: dict) -> dict:
    local = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    for name, sub in local.items():
        defs[f"{prefix}__{name}"] = None  # reserve before recursing (self-references)
    rename = {f"#/{kind}/{name}": f"#/$defs/{prefix}__{name}" for kind in ("$defs", "definitions") for name in local}

    def rewrite(node):
        if isinstance(node, dict):
            return {k: rename.get(v, v) if k == "$ref" else rewrite(v) for k, v in node.items() if k not in ("$defs", "definitions")}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    for name, sub in local.items():
        defs[f"{prefix}__{name}"] = rewrite(sub)
    return rewrite(schema)


def call_grammar(
    tools: list[dict], fmt: ToolFormat, auto: bool, parallel: bool, answer: StructuredOutput | None = None
) -> str:
    """A Lark grammar (llguidance dialect) for calls to `tools` written in `fmt`.

    Without `auto` the output is calls only. With `auto` it is either plain text or calls, and a
    call is constrained from the moment its opening tag appears (the tag is a lazy lexeme that ends
    the free text before it); with `auto` and a JSON `answer`, it is that JSON or calls.
    """
    q = json.dumps
    free_text = auto and answer is None  # text before a call; with a JSON answer, calls start at once
    open_tag = "open" if free_text else q(fmt.open)
    if fmt.close:  # Hermes: every call in its own tags; free text may come between them in auto
        each = f"{open_tag} {q(chr(10))} call {q(chr(10) + fmt.close)}"
        calls = f"({each})+" if free_text and parallel else f"{each} ({q(fmt.separator)} {each})*" if parallel else each
    else:
        calls = f"call ({q(fmt.separator)} call)*" if parallel else "call"
        if fmt.in_list:
            calls = f"{open_tag} {q('[')} {calls} {q(']')}"
    lines = ["%llguidance {}"]
    if not auto:
        lines.append(f"start: {calls}")
    elif answer is not None:
        if answer.json is None and not answer.json_object:
            raise InvalidRequestError("with tools, response_format must be a JSON schema or json_object")
        schema = closed_objects(json_schema_of(answer.json)) if answer.json is not None else {"type": "object"}
        lines.append(f"start: answer | {calls}")
        lines.append(f"answer: %json {q({**schema, 'x-guidance': JSON_DEFAULTS})}")
    elif fmt.bare_json:  # Llama 3: an answer that starts with "{" is a call
        lines.append(f"start: TEXT | {calls}")
        lines.append(r"TEXT: /([^{](.|\n)*)?/")
    else:
        lines.append(f"start: TEXT | {calls}")
        lines.append(f"open[lazy]: TEXT {q(fmt.open)}")
        lines.append(r"TEXT: /(.|\n)*/")
    lines.append(f"call: %json {q(call_schema(tools, fmt.arguments_key))}")
    return "\n".join(lines) + "\n"


# --- prompt rendering ------------------------------------------------------------------------


def render_messages(
    messages: list[ChatMessage | dict], tools: list[dict] | None, fmt: ToolFormat, template_renders_tools: bool
) -> tuple[list[dict], dict]:
    """Messages (and template kwargs) ready for the chat template.

    A template that renders tools gets them as `tools=` and the messages as they are (call
    arguments as objects, as HF templates expect). For any other template, calls and results are
    written out in the Hermes format the built-in tool prompt teaches: an assistant turn's calls as
    `<tool_call>` blocks, tool results as a user turn of `<tool_response>` blocks.
    """
    dicts = [ChatMessage.model_validate(m).model_dump(exclude_none=True) for m in messages]
    if template_renders_tools:
        for m in dicts:
            for call in m.get("tool_calls", []):
                call["function"]["arguments"] = _json_or_text(call["function"]["arguments"])
        return dicts, {"tools": tools} if tools else {}
    out: list[dict] = []
    for m in dicts:
        content = _text(m.get("content"))
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [
                "<tool_call>\n" + json.dumps({"name": c["function"]["name"], "arguments": _json_or_text(c["function"]["arguments"])})
                + "\n</tool_call>"
                for c in m["tool_calls"]
            ]
            out.append({"role": "assistant", "content": "\n".join(([content] if content else []) + calls)})
        elif m["role"] == "tool":
            response = f"<tool_response>\n{content}\n</tool_response>"
            if out and out[-1].get("role") == "user" and out[-1]["content"].startswith("<tool_response>"):
                out[-1]["content"] += "\n" + response  # parallel results share one turn
            else:
                out.append({"role": "user", "content": response})
        else:
            out.append({**m, "content": content})
    if tools:
        prompt = BUILTIN_TOOL_PROMPT.format(tools="\n".join(json.dumps(t) for t in tools))
        if out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": out[0]["content"] + "\n\n" + prompt}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out, {}


def _json_or_text(arguments: str):
    try:
        return json.loads(arguments)
    except (TypeError, json.JSONDecodeError):
        return arguments


def _text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


# --- incremental parsing ---------------------------------------------------------------------

_CALL_HEADER = regex.compile(r'\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"(?:arguments|parameters)"\s*:\s*\{')


@dataclass(slots=True)
class ParsedDelta:
    """What one piece of model output added: text and tool-call deltas."""

    text: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)


class ToolCallParser:
    """Splits model output, fed in any chunks, into text and tool calls.

    `feed` returns what is certain so far, holding back a partial opening tag and trailing
    whitespace; `finish` flushes the rest. A call's name (with its id) comes out as soon as it is
    complete, its arguments as fragments as they arrive. Whitespace next to a call is not text.
    A call whose JSON does not have the usual `{"name": ..., "arguments": {...}}` shape is parsed
    when its object is complete; output that is not a call at all comes back as text. Decisions
    depend only on the text, never on how it was chunked, so the deltas of any chunking
    concatenate to the same `content` and `tool_calls`.
    """

    def __init__(self, fmt: ToolFormat = HERMES, id_prefix: str | None = None) -> None:
        self.format = fmt
        self.id_prefix = id_prefix or uuid.uuid4().hex[:16]
        self.content = ""
        self.tool_calls: list[ToolCall] = []
        self._buf = ""
        self._state = "text"
        self._at_start = True  # nothing but whitespace so far (a Llama 3 answer may open with "{")
        self._strip = False  # drop the whitespace that follows a region of calls
        self._in_list = False
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
                    "junk": self._junk}
        while handlers[self._state](final):
            pass
        return self._delta

    # output

    def _emit_text(self, text: str) -> None:
        if text:
            self._at_start = self._at_start and not text.strip()
            self.content += text
            self._delta.text += text

    def _emit_call(self, name: str, arguments: str = "") -> None:
        index = len(self.tool_calls)
        call_id = f"call_{self.id_prefix}{index}"
        self.tool_calls.append(ToolCall(id=call_id, function=ToolCallFunction(name=name, arguments=arguments)))
        self._delta.tool_calls.append(ToolCallDelta(index, call_id, name, arguments))
        self._at_start = False

    def _emit_arguments(self, fragment: str) -> None:
        call = self.tool_calls[-1]
        call.function.arguments += fragment
        last = self._delta.tool_calls[-1] if self._delta.tool_calls else None
        if last is not None and last.index == len(self.tool_calls) - 1:
            last.arguments += fragment
        else:
            self._delta.tool_calls.append(ToolCallDelta(len(self.tool_calls) - 1, arguments=fragment))

    def _consume(self, n: int) -> str:
        taken, self._buf = self._buf[:n], self._buf[n:]
        return taken

    def _goto(self, state: str) -> bool:
        self._state = state
        self._depth, self._in_str, self._esc, self._scanned = 0, False, False, 0
        return True

    # states

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
        self._emit_call(json.loads(f'"{match.group(1)}"'))
        self._consume(match.end() - 1)  # the arguments' "{" is the first argument fragment
        return self._goto("arguments")

    def _arguments(self, final: bool) -> bool:
        end = self._scan(self._buf)
        fragment = self._consume(len(self._buf) if end is None else end)
        if fragment:
            self._emit_arguments(fragment)
        if end is None:
            return False
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
            if final:
                self._emit_text(self._consume(len(self._buf)))
                return self._goto("text")
            return False
        raw = self._consume(self._scanned + end)
        call = _as_call(raw)
        if call is None:
            self._emit_text(raw)
        else:
            self._emit_call(*call)
        return self._goto("region")

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
