"""The synchronous engine core: requests in, one scheduled model step at a time, outputs out."""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pydantic import BaseModel

from .block_manager import BlockManager
from .config import EngineConfig
from .detokenizer import Detokenizer
from .errors import ContextLengthError, EngineError, InvalidRequestError
from .grammar_mask import GrammarBackend
from .loader import load_model
from .model_runner import ModelRunner, kv_bytes_per_token
from .protocol import ChatMessage, CompletionOutput, RequestOutput, SamplingParams, Usage
from .registry import DEFAULT_MODEL
from .sampler import Sampler
from .scheduler import Scheduler
from .sequence import Sequence, SequenceStatus
from .structured import compile_grammar, from_response_format
from .tool_format import ToolCalling, ToolCallParser

Prompt = str | list[int]


@dataclass(slots=True)
class EngineStats:
    """Counters since start: what was asked, what the prefix cache saved, what the model computed."""

    num_requests: int = 0
    num_prompt_tokens: int = 0
    num_cached_tokens: int = 0  # prompt tokens served from the prefix cache at admission
    num_computed_tokens: int = 0  # tokens run through the model (prefill chunks + decodes + recompute)
    num_generated_tokens: int = 0
    num_preemptions: int = 0
    num_steps: int = 0
    num_draft_tokens: int = 0  # speculative tokens proposed and run through the model
    num_accepted_tokens: int = 0  # of those, kept


@dataclass(slots=True, eq=False)
class Request:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    params: SamplingParams
    grammar: str | None = None  # compiled output constraint
    response_format: object = None  # a JSON response_format: finished answers are parsed into `parsed`
    tool_calling: ToolCalling | None = None
    seqs: list[Sequence] = field(default_factory=list)
    emitted_tokens: list[int] = field(default_factory=list)  # per completion, for token deltas
    parsers: list[ToolCallParser] = field(default_factory=list)  # per completion, with tools
    parsed: list = field(default_factory=list)  # per completion: the parsed answer once finished

    @property
    def finished(self) -> bool:
        return all(s.is_finished for s in self.seqs)


class LLMEngine:
    """Owns the model, KV cache, scheduler and sampler. Not thread-safe: `AsyncLLM` drives it from one thread."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        loaded = load_model(model, self.config.torch_dtype)
        self.model, self.model_config, self.tokenizer = loaded.model, loaded.config, loaded.tokenizer
        self.eos_token_ids = loaded.eos_token_ids
        self.vocab_size = self.model_config.vocab_size
        bs = self.config.block_size
        num_blocks = self.config.kv_cache_bytes // (kv_bytes_per_token(self.model, self.config.torch_dtype) * bs)
        capacity = num_blocks * bs
        model_len = getattr(self.model_config, "max_position_embeddings", None) or capacity
        if self.config.max_model_len is not None and self.config.max_model_len > capacity:
            raise InvalidRequestError(
                f"max_model_len={self.config.max_model_len} needs more KV cache than kv_cache_bytes "
                f"={self.config.kv_cache_bytes} holds ({capacity} tokens); raise kv_cache_bytes"
            )
        self.max_model_len = min(self.config.max_model_len or model_len, model_len, capacity)
        if self.max_model_len < 2:
            raise InvalidRequestError("kv_cache_bytes is too small to hold even one short sequence")
        self.block_manager = BlockManager(num_blocks, bs, self.config.enable_prefix_caching)
        self.scheduler = Scheduler(self.config, self.block_manager)
        self.runner = ModelRunner(self.model, num_blocks, bs, self.config.torch_dtype)
        self.sampler = Sampler()
        self.requests: dict[str, Request] = {}
        self._grammar_backend: GrammarBackend | None = None
        self.stats = EngineStats()
        self._seq_ids = itertools.count()
        self._request_ids = itertools.count()

    # --- requests ---------------------------------------------------------------------------

    def render_chat(
        self,
        messages: list[ChatMessage | dict],
        add_generation_prompt: bool = True,
        tool_calling: ToolCalling | None = None,
        **template_kwargs,
    ) -> list[int]:
        """Token ids of a conversation rendered with the model's chat template (and its tools)."""
        if not isinstance(messages, list) or not messages:
            raise InvalidRequestError("messages must be a non-empty list of chat messages")
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise InvalidRequestError("this model has no chat template; use generate() with a plain prompt")
        try:
            if tool_calling is not None:
                dicts, extra = tool_calling.render(messages)
            else:
                dicts, extra = [ChatMessage.model_validate(m).model_dump(exclude_none=True) for m in messages], {}
        except ValueError as exc:
            raise InvalidRequestError(f"invalid chat message: {exc}") from exc
        text = self.tokenizer.apply_chat_template(
            dicts, tokenize=False, add_generation_prompt=add_generation_prompt, **extra, **template_kwargs
        )
        return self.tokenizer.encode(text, add_special_tokens=False)

    def make_chat_request(
        self,
        messages: list[ChatMessage | dict],
        params: SamplingParams | None = None,
        request_id: str | None = None,
        *,
        tools: list | None = None,
        tool_choice: str | dict | None = None,
        parallel_tool_calls: bool = True,
        response_format: object = None,
        add_generation_prompt: bool = True,
        **template_kwargs,
    ) -> Request:
        """`make_request` for a conversation, with optional tools (OpenAI function specs, pydantic
        models or typed functions) and `tool_choice` ("none", "auto", "required" or a named function)."""
        tool_calling = ToolCalling.create(
            tools, tool_choice, parallel_tool_calls, getattr(self.tokenizer, "chat_template", None)
        )
        prompt = self.render_chat(messages, add_generation_prompt, tool_calling, **template_kwargs)
        if tool_calling is None:
            return self.make_request(prompt, params, request_id, response_format)
        params = params or SamplingParams()
        answer = from_response_format(response_format) if response_format is not None else params.structured
        params = dataclasses.replace(params, structured=tool_calling.constraint(answer))
        request = self.make_request(prompt, params, request_id)
        request.tool_calling, request.response_format = tool_calling, response_format
        return request

    def make_request(
        self,
        prompt: Prompt,
        params: SamplingParams | None = None,
        request_id: str | None = None,
        response_format: object = None,
    ) -> Request:
        """Validate and tokenize a request without touching engine state (safe from any thread).

        `response_format` (a pydantic model class, or OpenAI's `{"type": "json_schema", ...}` /
        `{"type": "json_object"}`) constrains the output and fills `parsed` of finished completions.
        """
        params = params or SamplingParams()
        if not isinstance(params, SamplingParams):
            raise InvalidRequestError(f"sampling params must be a SamplingParams, got {type(params).__name__}")
        if response_format is not None:
            params = dataclasses.replace(params, structured=from_response_format(response_format))
        if isinstance(prompt, str):
            if not prompt:
                raise InvalidRequestError("prompt is empty")
            text, token_ids = prompt, self.tokenizer.encode(prompt)
        elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            text, token_ids = None, list(prompt)
            if min(token_ids) < 0 or max(token_ids) >= self.vocab_size:
                raise InvalidRequestError(f"prompt token ids must be in [0, {self.vocab_size})")
        else:
            raise InvalidRequestError("prompt must be a non-empty string or a non-empty list of token ids")
        if len(token_ids) >= self.max_model_len:
            raise ContextLengthError(
                f"prompt has {len(token_ids)} tokens but the context window is {self.max_model_len}; "
                "shorten the prompt (at least one token must be left for the answer)"
            )
        if params.max_tokens is not None and len(token_ids) + params.max_tokens > self.max_model_len:
            raise ContextLengthError(
                f"prompt ({len(token_ids)} tokens) plus max_tokens ({params.max_tokens}) exceeds the "
                f"context window of {self.max_model_len} tokens"
            )
        if any(t >= self.vocab_size for t in params.stop_token_ids):
            raise InvalidRequestError(f"stop_token_ids must be < vocab size {self.vocab_size}")
        if params.logprobs is not None and params.logprobs > self.vocab_size:
            raise InvalidRequestError(f"logprobs must be <= vocab size {self.vocab_size}")
        grammar = compile_grammar(params.structured) if params.structured is not None else None
        rid = request_id if request_id is not None else f"req-{next(self._request_ids)}"
        json_answer = params.structured is not None and (params.structured.json is not None or params.structured.json_object)
        return Request(rid, text, token_ids, params, grammar, response_format if json_answer else None)

    @property
    def grammar_backend(self) -> GrammarBackend:
        if self._grammar_backend is None:  # built on first use: ~0.4 s for a 49k vocabulary
            self._grammar_backend = GrammarBackend(self.tokenizer)
        return self._grammar_backend

    def add(self, request: Request) -> None:
        """Queue a request made by `make_request`."""
        if request.request_id in self.requests:
            raise InvalidRequestError(f"request id {request.request_id!r} is already in use")
        p = request.params
        max_tokens = min(p.max_tokens or self.max_model_len, self.max_model_len - len(request.prompt_token_ids))
        for index in range(p.n):
            generator = None
            if not p.greedy:
                generator = torch.Generator()
                if p.seed is not None:
                    generator.manual_seed(p.seed + index)
                else:
                    generator.seed()
            seq = Sequence(
                next(self._seq_ids), request.request_id, index, list(request.prompt_token_ids),
                len(request.prompt_token_ids), p, max_tokens, generator=generator,
                detokenizer=Detokenizer(self.tokenizer, p, request.prompt_token_ids),
                logprobs=[] if p.logprobs is not None else None,
                matcher=self.grammar_backend.matcher(request.grammar) if request.grammar else None,
            )
            request.seqs.append(seq)
            request.emitted_tokens.append(0)
            request.parsed.append(None)
            if request.tool_calling is not None and (parser := request.tool_calling.parser()) is not None:
                request.parsers.append(parser)
        self.requests[request.request_id] = request
        self.stats.num_requests += 1
        self.stats.num_prompt_tokens += len(request.prompt_token_ids)
        # The other n-1 completions join once the first has prefilled the prompt: they then
        # share its KV blocks through the prefix cache instead of computing the prompt again.
        self.scheduler.add(request.seqs[0])

    def add_request(self, prompt: Prompt, params: SamplingParams | None = None, request_id: str | None = None) -> str:
        request = self.make_request(prompt, params, request_id)
        self.add(request)
        return request.request_id

    def abort_request(self, request_id: str) -> RequestOutput | None:
        """Stop a request and free its KV blocks; returns its final output (None if unknown)."""
        request = self.requests.pop(request_id, None)
        if request is None:
            return None
        for seq in request.seqs:
            if seq.is_finished:
                continue
            if seq in self.scheduler.running or seq in self.scheduler.waiting:
                self.scheduler.finish(seq)  # frees its blocks
            seq.status = SequenceStatus.FINISHED
            seq.finish_reason = "abort"
        return self._output(request)

    def has_unfinished_requests(self) -> bool:
        return bool(self.requests)

    # --- stepping ---------------------------------------------------------------------------

    def step(self) -> list[RequestOutput]:
        """Run one scheduled batch; return the outputs of the requests that advanced."""
        batch = self.scheduler.schedule()
        self.stats.num_preemptions = self.scheduler.num_preemptions
        if not batch:
            if self.scheduler.has_unfinished():
                raise EngineError("scheduler could not place any sequence; the KV cache is too small")
            return []
        logits = self.runner.run(batch)
        self.stats.num_steps += 1
        self.stats.num_computed_tokens += sum(batch.num_tokens)
        sampled = self.scheduler.advance(batch)
        advanced: dict[str, Request] = {}
        if any(seq.draft_token_ids for seq in sampled):  # 1 + len(draft) rows for those
            counts = [1 + len(seq.draft_token_ids) for seq in sampled]
            first_rows = list(itertools.accumulate([0] + counts[:-1]))
            for seq, row, count in zip(sampled, first_rows, counts):
                if count > 1:
                    self._verify_drafts(seq, logits[row : row + count])
                    advanced[seq.request_id] = self.requests[seq.request_id]
            plain = [i for i, count in enumerate(counts) if count == 1]
            sampled, logits = [sampled[i] for i in plain], logits[[first_rows[i] for i in plain]]
        constrained = [i for i, seq in enumerate(sampled) if seq.matcher is not None]
        dead_ends: dict[int, str] = {}
        if constrained:
            problems = self.grammar_backend.apply(logits, constrained, [sampled[i].matcher for i in constrained])
            dead_ends = {sampled[i].seq_id: why for i, why in zip(constrained, problems) if why}
        tokens, logprobs = self.sampler(logits, sampled) if sampled else ([], [])
        for seq, token, logprob in zip(sampled, tokens, logprobs):
            request = self.requests[seq.request_id]
            if seq.num_output_tokens == 0:
                self.stats.num_cached_tokens += seq.num_cached_tokens
                if seq.index == 0:
                    for sibling in request.seqs[1:]:
                        self.scheduler.add(sibling)
            if seq.seq_id in dead_ends:  # finish instead of sampling from an empty distribution
                self._finish(seq, "error", dead_ends[seq.seq_id])
            else:
                self._append_token(seq, token, logprob)
            advanced[request.request_id] = request
        outputs = [self._output(r) for r in advanced.values()]
        for out in outputs:
            if out.finished:
                del self.requests[out.request_id]
        return outputs

    def _verify_drafts(self, seq: Sequence, logits: torch.Tensor) -> None:
        """Sample each position of a drafted decode in turn — the last real token's, then each
        draft token's — exactly as plain decoding would (constraint mask, penalties over the tokens
        so far, the sequence's own generator), keeping draft tokens while the sample equals them."""
        draft = seq.draft_token_ids
        accepted = 0
        for position in range(len(draft) + 1):
            row = logits[position : position + 1]
            if seq.matcher is not None and (problem := self.grammar_backend.apply(row, [0], [seq.matcher])[0]):
                self._finish(seq, "error", problem)
                break
            (token,), (logprob,) = self.sampler(row, [seq])
            self._append_token(seq, token, logprob)
            if seq.is_finished or position == len(draft) or token != draft[position]:
                break
            accepted += 1
        self.stats.num_draft_tokens += len(draft)
        self.stats.num_accepted_tokens += accepted
        if seq.is_finished:
            seq.draft_token_ids = []
        else:
            self.scheduler.accept_drafts(seq, accepted)

    def _finish(self, seq: Sequence, reason: str, stop_reason: str | int | None = None) -> None:
        seq.finish_reason, seq.stop_reason = reason, stop_reason
        self.scheduler.finish(seq)

    def _append_token(self, seq: Sequence, token: int, logprob) -> None:
        """Append a sampled token; finish the sequence when it meets a stop condition."""
        seq.token_ids.append(token)
        self.stats.num_generated_tokens += 1
        if seq.logprobs is not None:
            seq.logprobs.append(logprob)
        p = seq.params
        if seq.matcher is not None and not seq.matcher.consume_token(token):
            return self._finish(seq, "error", f"output constraint rejected token {token}: {seq.matcher.get_error()}")
        if not p.ignore_eos and token in self.eos_token_ids:
            return self._finish(seq, "stop")
        if token in p.stop_token_ids:
            return self._finish(seq, "stop", token)
        stop = seq.detokenizer.add(token)
        if stop is not None:
            return self._finish(seq, "stop", stop)
        if seq.matcher is not None and seq.matcher.is_stopped():  # the constrained output is complete
            return self._finish(seq, "stop")
        if seq.num_output_tokens >= seq.max_tokens:
            return self._finish(seq, "length")

    def _output(self, request: Request) -> RequestOutput:
        completions = []
        for seq in request.seqs:
            finished = seq.is_finished
            delta = seq.detokenizer.emit(finished)
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
            if request.parsers:
                self._split_tool_calls(out, request.parsers[seq.index])
            if finished and request.response_format is not None:
                self._parse_answer(out, request, seq.index)
            completions.append(out)
        usage = Usage(
            prompt_tokens=len(request.prompt_token_ids),
            completion_tokens=sum(s.num_output_tokens for s in request.seqs),
            cached_tokens=request.seqs[0].num_cached_tokens,
        )
        return RequestOutput(
            request.request_id, request.prompt, request.prompt_token_ids, completions, usage, request.finished
        )

    @staticmethod
    def _split_tool_calls(out: CompletionOutput, parser: ToolCallParser) -> None:
        """Replace the raw text of `out` with the text outside tool calls, and add the calls."""
        parsed = parser.feed(out.delta)
        if out.finished:
            tail = parser.finish()
            parsed.text += tail.text
            parsed.tool_calls += tail.tool_calls
        out.text, out.delta, out.tool_call_deltas = parser.content, parsed.text, parsed.tool_calls
        out.tool_calls = [c.model_copy(deep=True) for c in parser.tool_calls] or None
        if out.finish_reason == "stop" and out.tool_calls:
            out.finish_reason = "tool_calls"

    @staticmethod
    def _parse_answer(out: CompletionOutput, request: Request, index: int) -> None:
        """Fill `parsed` of a finished JSON answer (once); an answer that fails validation (a
        pydantic validator beyond the schema) finishes with "error" and the reason."""
        if out.finish_reason != "stop":
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
