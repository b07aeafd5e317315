"""The synchronous engine core: requests in, one scheduled model step at a time, outputs out."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

import torch

from . import tool_decision
from .block_manager import BlockManager
from .config import EngineConfig
from .constraints import Constraints, constraints_for
from .cpus import cap_torch_threads
from .detokenizer import Detokenizer
from .errors import ContextLengthError, EngineError, InvalidRequestError
from .images import ImagePolicy
from .images import read_image as read_image_url
from .live_weights import LiveWeights
from .loader import load_model
from .lora import fingerprint
from .model_runner import ModelRunner, kv_bytes_per_token
from .native_layer import enable_native_layers
from .outputs import Prompt, Request, request_output
from .packed import linear_kernel, pack_model
from .protocol import ChatMessage, ChatOptions, RequestOutput, SamplingParams
from .quant import quantize_model
from .registry import DEFAULT_MODEL, resolve_model
from .sampler import Sampler
from .scheduler import Scheduler
from .sequence import Sequence, SequenceStatus, logit_rows
from .structured import compile_grammar, from_response_format
from .tool_decision import PROBE, ToolDecisions
from .tool_format import CONTENT_FREE_TOOLS, prepare_chat


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


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """The engine's load and counters as of its last step: a copy, safe to read from any thread."""

    waiting: int  # sequences queued for admission
    running: int  # sequences being prefilled or decoded
    kv_blocks_used: int  # KV-cache blocks held by live sequences
    kv_blocks_total: int
    counters: EngineStats


class LLMEngine(LiveWeights):
    """Owns the model, KV cache, scheduler and sampler. Not thread-safe: `AsyncLLM` drives it from one thread."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        else:
            cap_torch_threads()
        self.model_path = resolve_model(model)
        loaded = load_model(self.model_path, self.config.torch_dtype, self.config.rope_scaling)
        self.model, self.model_config, self.tokenizer = loaded.model, loaded.config, loaded.tokenizer
        # the base model's, as loaded: quantized embeddings round its rows differently, and adapters trained
        # on the base (the shipped tool adapter among them) run on the quantized model all the same
        self.fingerprint = fingerprint(self.model_config, self.model.get_submodule("model.embed_tokens").weight)
        if self.config.quantization:
            quantize_model(self.model, self.config.quantization, self.config.torch_dtype)
            enable_native_layers(self.model)
        else:
            pack_model(self.model, linear_kernel(self.config.torch_dtype))
        self.eos_token_ids = loaded.eos_token_ids
        self.images = loaded.images
        self.image_policy = ImagePolicy(tuple(Path(d) for d in self.config.image_dirs), self.config.allow_remote_images,
                                        self.config.max_image_pixels)
        self.vocab_size = self.model_config.vocab_size
        bs = self.config.block_size
        num_blocks = self.config.kv_cache_bytes // (kv_bytes_per_token(self.model, self.config.cache_dtype) * bs)
        capacity = num_blocks * bs
        trained = getattr(self.model_config, "max_position_embeddings", None) or capacity
        self.max_model_len = self.config.context_window(trained, capacity)
        self.block_manager = BlockManager(num_blocks, bs, self.config.enable_prefix_caching)
        self.scheduler = Scheduler(self.config, self.block_manager)
        self.runner = ModelRunner(self.model, num_blocks, bs, self.config.cache_dtype, self.config.kv_cache_populate)
        self.sampler = Sampler()
        self.requests: dict[str, Request] = {}
        self._constraints: Constraints | None = None
        self._decisions: ToolDecisions | None = None
        self.stats = EngineStats()
        self._seq_ids = itertools.count()
        self._request_ids = itertools.count()
        for name, path in (self.config.lora_adapters or {}).items():
            self.load_lora(name, path)
        self.tool_adapter = self._tool_adapter()

    @property
    def constraints(self) -> Constraints:
        return constraints_for(self, self.tokenizer)

    @property
    def decisions(self) -> ToolDecisions:
        """The call-or-answer decisions of `tool_choice="auto"` requests (engine thread only)."""
        if self._decisions is None:
            self._decisions = ToolDecisions(self.scheduler, self.constraints, self._seq_ids)
        return self._decisions

    def expert_load(self) -> dict[int, list[int]]:
        """Tokens routed to each expert of each mixture-of-experts layer since the model loaded
        (layer index -> count per expert); empty for dense models. Safe to read from any thread."""
        return {i: counts.tolist() for i, layer in enumerate(self.model.model.layers)
                for name, counts in layer.named_buffers() if name.endswith("tokens_routed")}

    def snapshot(self) -> EngineSnapshot:
        total = len(self.block_manager.blocks)
        return EngineSnapshot(len(self.scheduler.waiting), len(self.scheduler.running),
                              total - self.block_manager.num_free_blocks, total, dataclasses.replace(self.stats))

    # --- requests ---------------------------------------------------------------------------

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True, **template_kwargs) -> list[int]:
        """Token ids of messages (ready for the template, see `tool_format.prepare_chat`)."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt,
                                                  **template_kwargs)
        return self.tokenizer.encode(text, add_special_tokens=False)

    def make_chat_request(
        self,
        messages: list[ChatMessage | dict],
        params: SamplingParams | None = None,
        request_id: str | None = None,
        **options,
    ) -> Request:
        """`make_request` for a conversation rendered with the model's chat template; `options` are
        `ChatOptions` (tools, tool_choice, response_format, ...)."""
        chat = ChatOptions.of(options)
        params = params or SamplingParams()
        if not isinstance(params, SamplingParams):
            raise InvalidRequestError(f"sampling params must be a SamplingParams, got {type(params).__name__}")
        template = getattr(self.tokenizer, "chat_template", None)
        if template is None:
            raise InvalidRequestError("this model has no chat template; use generate() with a plain prompt")
        read_image = functools.partial(read_image_url, policy=self.image_policy) if self.images is not None else None
        plan = prepare_chat(messages, chat, params.structured, template, self.config.tool_format, read_image)
        images = None
        if plan.images:
            text = self.tokenizer.apply_chat_template(plan.messages, tokenize=False,
                                                      add_generation_prompt=chat.add_generation_prompt,
                                                      **plan.template_kwargs)
            prompt, images = self.images(text, plan.images)
        else:
            prompt = self.render_chat(plan.messages, chat.add_generation_prompt, **plan.template_kwargs)
        request = self.make_request(prompt, dataclasses.replace(params, structured=plan.structured), request_id)
        request.images = images
        if plan.tool_calling is not None and plan.tool_calling.choice != "none":
            request.lora = self._lora_of(params, has_tools=True)  # the tool adapter, unless one is named
        if chat.response_format is not None and from_response_format(chat.response_format) is not None:
            request.response_format = chat.response_format
        calling = plan.tool_calling
        if calling is not None and calling.choice != "none":
            request.tool_calling = calling
        if plan.call_structured is not None:
            request.call_grammar = compile_grammar(plan.call_structured)
            request.answer_grammar = compile_grammar(plan.answer_only)
            request.baseline = tuple(self.render_chat(plan.baseline_messages, True, **plan.template_kwargs))
            request.opener = self.tokenizer.encode(calling.format.opener, add_special_tokens=False)
            if (self.images is None and request.lora is not None and request.lora.meta.get("tool_calling")
                    and ChatMessage.model_validate(messages[-1]).role == "user"):  # the relevance check's prompt
                neutral, extra = dataclasses.replace(calling, tools=CONTENT_FREE_TOOLS).render(messages)
                request.neutral = tuple(self.render_chat(neutral, chat.add_generation_prompt,
                                                         **{**plan.template_kwargs, **extra}))
                blank = [*plan.messages[:-1], {**plan.messages[-1], "content": ""}]
                request.turn = len(request.prompt_token_ids) - _common_prefix(
                    request.prompt_token_ids, self.render_chat(blank, chat.add_generation_prompt, **plan.template_kwargs))
                if not calling.parallel and 1 < len(calling.tools) <= tool_decision.ONE_TOOL_PROBES:  # which tool, if it calls
                    for tool in calling.tools:
                        alone = dataclasses.replace(calling, tools=[tool])
                        rendered, extra = alone.render(messages)
                        request.one_tool_prompts.append(tuple(self.render_chat(
                            rendered, chat.add_generation_prompt, **{**plan.template_kwargs, **extra})))
                        request.one_tool_grammars.append(compile_grammar(alone.calls_constraint()))
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
        rid = request_id if request_id is not None else f"req-{next(self._request_ids)}"
        request = Request(rid, text, token_ids, params, lora=self._lora_of(params))
        if params.structured is not None:
            request.grammar = compile_grammar(params.structured)
            request.matcher = self.constraints.matcher(request.grammar, self._budget(request))
            if params.structured.json is not None or params.structured.json_object:
                request.response_format = response_format
        return request

    def _budget(self, request: Request) -> int:
        """Most tokens a completion of `request` may generate."""
        prompt_len = len(request.prompt_token_ids)
        return min(request.params.max_tokens or self.max_model_len, self.max_model_len - prompt_len)

    def add(self, request: Request) -> None:
        """Queue a request made by `make_request`."""
        if request.request_id in self.requests or request.request_id == PROBE:
            raise InvalidRequestError(f"request id {request.request_id!r} is already in use")
        if request.lora is not None and self.runner.lora.adapters.get(request.lora.name) is not request.lora:
            raise InvalidRequestError(f"adapter {request.lora.name!r} was unloaded")
        p = request.params
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
                len(request.prompt_token_ids), p, self._budget(request), generator=generator,
                detokenizer=Detokenizer(self.tokenizer, p, request.prompt_token_ids),
                logprobs=[] if p.logprobs is not None else None, lora=request.lora, images=request.images,
            )
            if request.matcher is not None:
                Constraints.attach(seq, request.matcher if index == 0 else request.matcher.deep_copy())
            request.seqs.append(seq)
            request.emitted_tokens.append(0)
            request.parsed.append(None)
            if request.tool_calling is not None:
                request.parsers.append(request.tool_calling.parser())
        if request.seqs[0].matcher is not None:  # the copies are made: the prototype is seq 0's own now
            request.matcher = None
        self.requests[request.request_id] = request
        self.stats.num_requests += 1
        self.stats.num_prompt_tokens += len(request.prompt_token_ids)
        if request.call_grammar is not None:  # tool_choice="auto": decide first (tool_decision.py)
            self.decisions.start(request)
        else:
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
        if request.call_grammar is not None:
            self.decisions.abort(request)
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
        spans = []  # each scheduled sequence's rows of the step's logits
        for seq, n in zip(batch.seqs, batch.num_tokens):
            start = spans[-1][1] if spans else 0
            spans.append((start, start + len(logit_rows(seq, seq.num_computed_tokens, n))))
        logits = self.runner.run(batch)
        self.stats.num_steps += 1
        self.stats.num_computed_tokens += sum(batch.num_tokens)
        sampled = self.scheduler.advance(batch)
        rows = {seq.seq_id: span for seq, span in zip(batch.seqs, spans)}
        advanced: dict[str, Request] = {}
        for seq, (start, end) in zip(batch.seqs, spans):
            if seq.request_id == PROBE and start < end:
                for request in self.decisions.add_rows(seq, logits[start:end]):
                    self.scheduler.add(request.seqs[0])
        plain = []
        for seq in sampled:
            start, end = rows[seq.seq_id]
            if seq.request_id == PROBE:
                continue
            if end - start > 1:  # a drafted decode: a row per position
                self._verify_drafts(seq, logits[start:end])
                advanced[seq.request_id] = self.requests[seq.request_id]
            else:
                plain.append((seq, start))
        sampled, rows = [seq for seq, _ in plain], [start for _, start in plain]
        if rows != list(range(len(logits))):  # not every row, in order: pick them out (a copy)
            logits = logits[rows]
        dead_ends = self.constraints.mask(logits, sampled) if any(s.matcher for s in sampled) else {}
        tokens, logprobs = self.sampler(logits, sampled) if sampled else ([], [])
        for seq, row, token, logprob in zip(sampled, logits, tokens, logprobs):
            request = self.requests[seq.request_id]
            if seq.num_output_tokens == 0:
                self.stats.num_cached_tokens += seq.num_cached_tokens
                if seq.index == 0:
                    for sibling in request.seqs[1:]:
                        self.scheduler.add(sibling)
            if seq.seq_id in dead_ends:  # finish instead of sampling from an empty distribution
                self._finish(seq, "error", dead_ends[seq.seq_id])
            else:
                self._append_token(seq, *self._steer(seq, row, token, logprob))
            advanced[request.request_id] = request
        outputs = [self._output(r) for r in advanced.values()]
        for out in outputs:
            if out.finished:
                del self.requests[out.request_id]
        return outputs

    def _steer(self, seq: Sequence, row: torch.Tensor, token: int, logprob):
        """The token a sequence writes (a constrained one may have to end within its budget),
        with its log-probability if asked for."""
        if seq.matcher is None:
            return token, logprob
        chosen = self.constraints.steer(seq, token)
        if chosen != token and logprob is not None:
            logprob = dataclasses.replace(logprob, token_id=chosen,
                                          logprob=row.float().log_softmax(-1)[chosen].item())
        return chosen, logprob

    def _verify_drafts(self, seq: Sequence, logits: torch.Tensor) -> None:
        """Sample each position of a drafted decode in turn — the last real token's, then each
        draft token's — exactly as plain decoding would (constraint mask, penalties over the tokens
        so far, the sequence's own generator), keeping draft tokens while the sample equals them."""
        draft = seq.draft_token_ids
        accepted = 0
        for position in range(len(draft) + 1):
            row = logits[position : position + 1]
            if seq.matcher is not None and (problem := self.constraints.mask(row, [seq]).get(seq.seq_id)):
                self._finish(seq, "error", problem)
                break
            (token,), (logprob,) = self.sampler(row, [seq])
            token, logprob = self._steer(seq, row[0], token, logprob)
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
        if seq.matcher is not None and (problem := self.constraints.consume(seq, token)):
            return self._finish(seq, "error", problem)
        ended = "length" if seq.closing is not None and seq.closing.forced else "stop"  # the budget forced it
        if not p.ignore_eos and token in self.eos_token_ids:
            return self._finish(seq, ended)
        if token in p.stop_token_ids:
            return self._finish(seq, "stop", token)
        stop = seq.detokenizer.add(token)
        if stop is not None:
            return self._finish(seq, "stop", stop)
        if seq.matcher is not None and seq.matcher.is_stopped():  # the constrained output is complete
            return self._finish(seq, ended)
        if seq.num_output_tokens >= seq.max_tokens:
            return self._finish(seq, "length")

    def _output(self, request: Request) -> RequestOutput:
        return request_output(request, lambda seq: self._finish(seq, "stop"))


def _common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
