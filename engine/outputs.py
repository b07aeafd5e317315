"""A request's state as the caller sees it: text and token deltas, tool calls, parsed answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from .images import ImageInputs
from .lora import LoRAAdapter
from .protocol import CompletionOutput, RequestOutput, SamplingParams, Usage
from .sequence import Sequence
from .tool_format import ToolCalling
from .tool_parser import ParsedDelta, ToolCallParser

Prompt = str | list[int]


@dataclass(slots=True, eq=False)
class Request:
    """One request: its prompt, sampling parameters, output constraint and completions.

    With `tool_choice="auto"`, `grammar` is the answer branch and `call_grammar` the call branch;
    `baseline` is the content-free prompt the call-or-answer decision is calibrated against and
    `opener` the tokens that open a call (see `tool_decision.py`); `answer_grammar` is the answer
    branch with no call in it, which a tool-trained adapter's decision to answer follows; `neutral`
    is the prompt with content-free tools, for that adapter's relevance check of the user's last
    turn, the prompt's last `turn` tokens; `one_tool_prompts` are the prompt with each offered tool
    alone, and `one_tool_grammars` a call to that tool (one call a reply: the call goes to the tool
    that makes the turn likeliest).
    """

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    params: SamplingParams
    grammar: str | None = None  # compiled output constraint
    matcher: object = None  # its llguidance matcher, checked against the budget (copied per completion)
    response_format: object = None  # a JSON response_format: finished answers are parsed into `parsed`
    tool_calling: ToolCalling | None = None
    call_grammar: str | None = None
    answer_grammar: str | None = None
    baseline: tuple[int, ...] | None = None
    neutral: tuple[int, ...] | None = None
    turn: int = 0
    one_tool_prompts: list[tuple[int, ...]] = field(default_factory=list)
    one_tool_grammars: list[str] = field(default_factory=list)
    opener: list[int] | None = None
    lora: LoRAAdapter | None = None
    images: ImageInputs | None = None  # a vision model's image tiles and where their tokens sit
    seqs: list[Sequence] = field(default_factory=list)
    emitted_tokens: list[int] = field(default_factory=list)  # per completion, for token deltas
    parsers: list[ToolCallParser] = field(default_factory=list)  # per completion, with tools
    parsed: list = field(default_factory=list)  # per completion: the parsed answer once finished

    @property
    def finished(self) -> bool:
        return all(s.is_finished for s in self.seqs)


def request_output(request: Request, end_repeat: Callable[[Sequence], None]) -> RequestOutput:
    """What is new of `request` since its last output, and everything so far. A completion whose
    parser found a repeated tool call is over: `end_repeat` finishes its sequence."""
    completions = []
    for seq in request.seqs:
        parser = request.parsers[seq.index] if request.parsers else None
        delta = seq.detokenizer.emit(seq.is_finished)
        parsed = parser.feed(delta) if parser is not None else None
        if parser is not None and parser.repeated and not seq.is_finished:
            end_repeat(seq)
            seq.detokenizer.emit(True)  # what follows the repeat is dropped
        output_ids = seq.output_token_ids
        new_ids = output_ids[request.emitted_tokens[seq.index] :]
        request.emitted_tokens[seq.index] = len(output_ids)
        out = CompletionOutput(
            index=seq.index,
            text=seq.detokenizer.emitted_text,
            token_ids=list(output_ids),
            delta=delta,
            delta_token_ids=new_ids,
            logprobs=list(seq.logprobs) if seq.logprobs is not None else None,
            finish_reason=seq.finish_reason,
            stop_reason=seq.stop_reason,
        )
        if parser is not None:
            _add_tool_calls(out, parser, parsed)
        if out.finished and request.response_format is not None:
            _parse_answer(out, request, seq.index)
        completions.append(out)
    usage = Usage(
        prompt_tokens=len(request.prompt_token_ids),
        completion_tokens=sum(s.num_output_tokens for s in request.seqs),
        cached_tokens=request.seqs[0].num_cached_tokens,
    )
    return RequestOutput(request.request_id, request.prompt, request.prompt_token_ids, completions, usage,
                         request.finished)


def _add_tool_calls(out: CompletionOutput, parser: ToolCallParser, parsed: ParsedDelta) -> None:
    """Replace the raw text of `out` with the text outside tool calls, and add the calls."""
    if out.finished:
        tail = parser.finish()
        parsed.text += tail.text
        parsed.tool_calls += tail.tool_calls
    out.text, out.delta, out.tool_call_deltas = parser.content, parsed.text, parsed.tool_calls
    out.tool_calls = [c.model_copy(deep=True) for c in parser.tool_calls] or None
    if out.finish_reason == "stop" and out.tool_calls:
        out.finish_reason = "tool_calls"


def _parse_answer(out: CompletionOutput, request: Request, index: int) -> None:
    """Fill `parsed` of a finished JSON answer (once); an answer that fails validation (a pydantic
    validator beyond the schema) finishes with "error" and the reason. An answer the budget ended
    is complete too (`closing.py`): it is parsed and keeps finish_reason "length"."""
    if out.finish_reason not in ("stop", "length") or out.tool_calls:
        return
    if request.parsed[index] is None:
        try:
            request.parsed[index] = _parse_json_answer(out.text, request.response_format)
        except ValueError as exc:
            out.finish_reason, out.stop_reason = "error", f"the answer does not validate: {exc}"
            return
    out.parsed = request.parsed[index]


def _parse_json_answer(text: str, response_format):
    """The JSON answer as the pydantic model asked for (validated), else as plain JSON data."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format.model_validate_json(text)
    return json.loads(text)
