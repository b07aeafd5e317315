"""Per-request function calling: which format, how tools and calls are rendered, what output to allow.

`prepare_chat` turns a conversation and its `ChatOptions` into a `ChatPlan`: the messages for
the chat template, the output constraint, the parser, and — for `tool_choice="auto"` — what the
engine needs to decide between calling and answering.

A model whose chat template renders tools gets them through its template, in its own call format
(Hermes `<tool_call>`, Llama 3 JSON, Mistral `[TOOL_CALLS]`). Any other model gets
`BUILTIN_TOOL_PROMPT` and the Hermes format, or the format `tool_format` names — SmolLM2's own
(`SMOLLM2_TOOL_PROMPT`, a `<tool_call>[...]</tool_call>` list) among them; measured on BFCL, the
Hermes prompt serves SmolLM2 as well for calls and far better for deciding whether to call
(docs/benchmarks.md). `tool_choice` becomes an llguidance grammar: `required` and a named function
allow only calls whose arguments match the schema; `auto` is decided at the start of the reply
(see `tool_decision.py`): calls under the same grammar as `required`, or text in which a call is
still constrained from the moment its opening tag appears.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRequestError
from .protocol import ChatMessage, ChatOptions, StructuredOutput
from .structured import JSON_DEFAULTS, decoding_schema, from_response_format
from .tool_parser import HERMES, LLAMA3, MISTRAL, SMOLLM2, TOOL_FORMATS, ToolCallParser, ToolFormat
from .tool_schema import json_schema_of, tool_specs

BUILTIN_TOOL_PROMPT = """You can call functions to answer. The functions are described in JSON inside <tools></tools>:
<tools>
{tools}
</tools>
To call functions, write one JSON object per call, each inside <tool_call></tool_call> tags:
<tool_call>
{{"name": "<function name>", "arguments": {{<arguments as a JSON object>}}}}
</tool_call>
Function results come back inside <tool_response></tool_response> tags. If no function fits, answer in plain text."""

# SmolLM2's function-calling prompt, from its model card (the format of its APIGen training data).
SMOLLM2_TOOL_PROMPT = """You are an expert in composing functions. You are given a question and a set of possible functions.
Based on the question, you will need to make one or more function/tool calls to achieve the purpose.
If none of the functions can be used, point it out and refuse to answer.
If the given question lacks the parameters required by the function, also point it out.
You have access to the following tools:
<tools>{tools}</tools>
The output MUST strictly adhere to the following format, and NO other text MUST be included.
The example format is as follows. Please make sure the parameter type is correct. If no function call is needed, please make the tool calls an empty list '[]'.
<tool_call>[
{{"name": "func_name1", "arguments": {{"argument1": "value1", "argument2": "value2"}}}},
(more tool calls as required)
]</tool_call>"""

# The content-free user turn that calibrates the call-or-answer decision (see tool_decision.py).
CONTENT_FREE = "N/A"
# The content-free tool set a tool-trained adapter's relevance check compares the real tools with.
CONTENT_FREE_TOOLS = [{"type": "function", "function": {
    "name": "do_nothing", "description": "This function does nothing.", "parameters": {"type": "object", "properties": {}}}}]


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


@dataclass(slots=True)
class ToolCalling:
    """The tools of one chat request, how to render them and what output to allow."""

    tools: list[dict]
    choice: str  # "none", "auto", "required" or the name of the one function to call
    parallel: bool = True
    format: ToolFormat = HERMES
    template_renders_tools: bool = False

    @classmethod
    def create(cls, options: ChatOptions, chat_template: str | None, tool_format: str | None = None) -> ToolCalling | None:
        """Validate a request's `tools`/`tool_choice`; None when the request has no tools.
        `tool_format` (a name in TOOL_FORMATS) overrides the format detected from the template."""
        tools, tool_choice = options.tools, options.tool_choice
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
        if tool_format is not None:
            fmt, renders = TOOL_FORMATS[tool_format], False
        return cls(specs, choice, options.parallel_tool_calls, fmt, renders)

    @property
    def named(self) -> bool:
        return self.choice not in ("none", "auto", "required")

    def render(self, messages: list[ChatMessage | dict], keep_parts: bool = False) -> tuple[list[dict], dict]:
        """Messages and template kwargs for the chat template, with the tools in the prompt."""
        return render_messages(messages, None if self.choice == "none" else self.tools, self.format,
                               self.template_renders_tools, keep_parts)

    def calls_constraint(self) -> StructuredOutput:
        """Only calls: to any tool (required, a decided auto) or to the named one."""
        tools = [t for t in self.tools if t["function"]["name"] == self.choice] if self.named else self.tools
        return StructuredOutput(grammar=call_grammar(tools, self.format, auto=False,
                                                     parallel=self.parallel and not self.named))

    def answer_constraint(self, answer: StructuredOutput | None) -> StructuredOutput:
        """Text — or the JSON `answer` — in which a call the model opens itself is still constrained."""
        return StructuredOutput(grammar=call_grammar(self.tools, self.format, auto=True, parallel=self.parallel,
                                                     answer=answer))

    def answer_only_constraint(self, answer: StructuredOutput | None) -> StructuredOutput:
        """A reply decided to answer: text in which no call opens, or the JSON `answer`."""
        return answer if answer is not None else StructuredOutput(grammar=answer_grammar(self.format))

    def parser(self) -> ToolCallParser:
        return ToolCallParser(self.format)


@dataclass(slots=True)
class ChatPlan:
    """What one chat request becomes: a prompt, an output constraint, and with tools a parser.

    With `tool_choice="auto"`, `structured` is the answer branch; the engine switches to
    `call_structured` when it decides to call, calibrating that decision against the model's
    reply to `baseline_messages`, the same prompt with a content-free user turn.
    """

    messages: list[dict]
    template_kwargs: dict
    structured: StructuredOutput | None = None
    tool_calling: ToolCalling | None = None
    call_structured: StructuredOutput | None = None
    answer_only: StructuredOutput | None = None  # the answer branch with no call in it
    baseline_messages: list[dict] | None = None
    images: list = field(default_factory=list)  # a vision model's images, in the order the messages place them


def prepare_chat(messages: list[ChatMessage | dict], options: ChatOptions, params_structured: StructuredOutput | None,
                 chat_template: str | None, tool_format: str | None = None,
                 read_image: Callable[[str], object] | None = None) -> ChatPlan:
    """The plan of one chat request. `params_structured` is the request's own constraint, if any;
    a `response_format` in `options` replaces it. `read_image` (a vision model's: image URL -> image)
    keeps content as parts, image parts becoming `{"type": "image"}` placeholders for the template."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("messages must be a non-empty list of chat messages")
    answer = from_response_format(options.response_format) if options.response_format is not None else params_structured
    template_kwargs = dict(options.chat_template_kwargs or {})
    calling = ToolCalling.create(options, chat_template, tool_format)
    try:
        if calling is None:
            dicts = [ChatMessage.model_validate(m).model_dump(exclude_none=True) for m in messages]
            if read_image is not None:
                dicts, images = _with_images(dicts, read_image)
                return ChatPlan(dicts, template_kwargs, answer, images=images)
            for m in dicts:  # content parts as text: chat templates of text models expect strings
                if isinstance(m.get("content"), list):
                    m["content"] = _text(m["content"])
            return ChatPlan(dicts, template_kwargs, answer)


        dicts, extra = calling.render(messages, keep_parts=read_image is not None)
    except ValueError as exc:
        raise InvalidRequestError(f"invalid chat message: {exc}") from exc
    images = []
    # a vision model: user turns keep their images as placeholders; a template that renders tools
    # itself (Qwen3-VL's) takes text as strings, one that does not (SmolVLM's) wants every turn as parts
    text_as_parts = not calling.template_renders_tools
    if read_image is not None:
        dicts, images = _with_images(dicts, read_image, text_as_parts)
    template_kwargs.update(extra)
    if calling.choice == "none":
        return ChatPlan(dicts, template_kwargs, answer, calling, images=images)
    if calling.choice != "auto":
        if answer is not None:
            raise InvalidRequestError("response_format can only be combined with tool_choice 'auto' or 'none'")
        return ChatPlan(dicts, template_kwargs, calling.calls_constraint(), calling, images=images)
    system = [m for m in messages if ChatMessage.model_validate(m).role in ("system", "developer")]
    baseline, _ = calling.render([*system, {"role": "user", "content": CONTENT_FREE}])
    if read_image is not None:
        baseline, _ = _with_images(baseline, read_image, text_as_parts)
    return ChatPlan(dicts, template_kwargs, calling.answer_constraint(answer), calling, calling.calls_constraint(),
                    calling.answer_only_constraint(answer), baseline, images)


# --- grammars --------------------------------------------------------------------------------


def call_schema(tools: list[dict], arguments_key: str = "arguments") -> dict:
    """JSON schema of one call to any of `tools`: `{"name": <const>, arguments_key: <parameters>}`.
    Each tool's `$defs` are hoisted to the root under a per-tool prefix so `$ref`s still resolve."""
    defs: dict[str, Any] = {}
    options = []
    for spec in tools:
        fn = spec["function"]
        params = decoding_schema(_hoist_defs(fn["parameters"], fn["name"], defs))
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
    for name in local:
        defs[f"{prefix}__{name}"] = None  # reserve before recursing (self-references)
    rename = {f"#/{kind}/{name}": f"#/$defs/{prefix}__{name}" for kind in ("$defs", "definitions") for name in local}

    def rewrite(node):
        if isinstance(node, dict):
            return {k: rename.get(v, v) if k == "$ref" else rewrite(v) for k, v in node.items() if k not in ("$defs", "definitions")}
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    for name, sub in local.items():
        defs[f"{prefix}__{name}"] = decoding_schema(rewrite(sub))
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
    if fmt.in_list:
        listed = f"call ({q(fmt.separator)} call)*" if parallel else "call"
        calls = f"{open_tag} {q(fmt.list_open)} {listed} {q(fmt.list_close)}" + (f" {q(fmt.close)}" if fmt.close else "")
    elif fmt.close:  # Hermes: every call in its own tags; free text may come between them in auto
        each = f"{open_tag} {q(chr(10))} call {q(chr(10) + fmt.close)}"
        calls = f"({each})+" if free_text and parallel else f"{each} ({q(fmt.separator)} {each})*" if parallel else each
    else:
        calls = f"call ({q(fmt.separator)} call)*" if parallel else "call"
    lines = ["%llguidance {}"]
    if not auto:
        lines.append(f"start: {calls}")
    elif answer is not None:
        if answer.json is None and not answer.json_object:
            raise InvalidRequestError("with tools, response_format must be a JSON schema or json_object")
        schema = decoding_schema(json_schema_of(answer.json)) if answer.json is not None else {"type": "object"}
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


def answer_grammar(fmt: ToolFormat) -> str:
    """Plain text in which no call opens: nothing that starts like the format's opening tag, in any
    letter case and with any spaces inside it (a small model writes `<tool_call call=...>`,
    `<tool_Call>` or `<tool_ call>` as readily as `<tool_call>`), nor, for Llama 3, a "{" first."""
    opening = r"\s*".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c).replace("/", "\\/")
                          for c in fmt.open[:-1])
    text = r"/([^{](.|\n)*)?/" if fmt.bare_json else r"/(.|\n)*/"
    return f"%llguidance {{}}\nstart: TEXT\nTEXT: {text} & ~/(.|\\n)*{opening}(.|\\n)*/\n"


# --- prompt rendering ------------------------------------------------------------------------


def render_messages(
    messages: list[ChatMessage | dict], tools: list[dict] | None, fmt: ToolFormat, template_renders_tools: bool,
    keep_parts: bool = False,
) -> tuple[list[dict], dict]:
    """Messages (and template kwargs) ready for the chat template.

    A template that renders tools gets them as `tools=` and the messages as they are (call
    arguments as objects, as HF templates expect). For any other template, calls and results are
    written out in `fmt`, with the tool prompt that teaches it: an assistant turn's calls as the
    format writes them, tool results as a user turn of `<tool_response>` blocks. With `keep_parts`
    (a vision model) user turns keep their content parts; everything else is text.
    """
    dicts = [ChatMessage.model_validate(m).model_dump(exclude_none=True) for m in messages]

    def kept(m: dict) -> bool:
        return keep_parts and m["role"] == "user" and isinstance(m.get("content"), list)

    if template_renders_tools:
        for m in dicts:
            if isinstance(m.get("content"), list) and not kept(m):
                m["content"] = _text(m["content"])
            for call in m.get("tool_calls", []):
                call["function"]["arguments"] = _json_or_text(call["function"]["arguments"])
        return dicts, {"tools": tools} if tools else {}
    out: list[dict] = []
    for m in dicts:
        content = m["content"] if kept(m) else _text(m.get("content"))
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = write_calls(fmt, [(c["function"]["name"], _json_or_text(c["function"]["arguments"]))
                                      for c in m["tool_calls"]])
            out.append({"role": "assistant", "content": "\n".join([content, calls] if content else [calls])})
        elif m["role"] == "tool":
            response = f"<tool_response>\n{content}\n</tool_response>"
            previous = out[-1]["content"] if out and out[-1].get("role") == "user" else None
            if isinstance(previous, str) and previous.startswith("<tool_response>"):
                out[-1]["content"] += "\n" + response  # parallel results share one turn
            else:
                out.append({"role": "user", "content": response})
        else:
            out.append({**m, "content": content})
    if tools:
        if fmt is SMOLLM2:
            prompt = SMOLLM2_TOOL_PROMPT.format(tools=json.dumps(tools))
        else:
            prompt = BUILTIN_TOOL_PROMPT.format(tools="\n".join(json.dumps(t) for t in tools))
        if out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": out[0]["content"] + "\n\n" + prompt}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out, {}


def write_calls(fmt: ToolFormat, calls: list[tuple[str, Any]]) -> str:
    """Calls (name, arguments) written the way `fmt` writes them."""
    objects = [json.dumps({"name": name, fmt.arguments_key: arguments}) for name, arguments in calls]
    if fmt.in_list:
        return fmt.open + fmt.list_open + fmt.separator.join(objects) + fmt.list_close + fmt.close
    if fmt.close:
        return fmt.separator.join(f"{fmt.open}\n{o}\n{fmt.close}" for o in objects)
    return fmt.separator.join(objects)


def _json_or_text(arguments: str):
    try:
        return json.loads(arguments)
    except (TypeError, json.JSONDecodeError):
        return arguments


def has_images(messages) -> bool:
    """Whether any message has a part that is not text (an image, audio, a file)."""
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") in _NOT_TEXT for p in content):
            return True
    return False


def _with_images(dicts: list[dict], read_image: Callable[[str], object],
                 text_as_parts: bool = True) -> tuple[list[dict], list]:
    """Messages for a vision model's template (content as text and `{"type": "image"}` parts, or
    text as strings unless `text_as_parts`) and their images, read in order."""
    images = []
    for m in dicts:
        content = m.get("content")
        if content is None or isinstance(content, str):
            if text_as_parts:
                m["content"] = [{"type": "text", "text": content or ""}]
            continue
        parts = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "image_url":
                url = part.get("image_url")
                images.append(read_image(url.get("url") if isinstance(url, dict) else url))
                parts.append({"type": "image"})
            elif kind == "text" and isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": part["text"]})
            else:
                raise InvalidRequestError(f"unsupported content part {part!r}: send text and image_url parts")
        m["content"] = parts
    return dicts, images


_NOT_TEXT = ("image_url", "image", "input_image", "input_audio", "audio", "video", "file")


def _text(content) -> str:
    """A message's content as text: a string, or the text of its content parts. Parts the engine
    cannot read (images, audio, files) are refused, not dropped: the answer would ignore them."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in _NOT_TEXT:
            raise InvalidRequestError(f"this model reads text only: a {kind!r} content part cannot be sent to it")
        else:
            raise InvalidRequestError(f"unsupported content part {part!r}: send {{'type': 'text', 'text': ...}} parts")
    return "".join(texts)
