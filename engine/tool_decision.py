"""Deciding `tool_choice="auto"`: does the reply call a tool, or answer?

A small model rarely opens a tool call by itself — SmolLM2 answers in prose even when a tool
plainly fits — yet the probability it gives to a reply that opens with a call does rise when the
user's turn calls for a tool. So the engine decides before the reply starts, by contextual
calibration (Zhao et al., 2021): the reply calls when the prompt makes the call's opening text
(`<tool_call>`) more likely than a content-free prompt does — the same system prompt and tools,
the user turn "N/A":

    log p(opener | prompt) > log p(opener | baseline)

Both are computed by *probes*: sequences that run a prompt followed by the opener and keep the
logits of the opener's positions (`Sequence.score_tokens`), then end. The baseline is one prompt
per tool set, so it is computed once and cached; the prompt's own probe leaves its KV blocks in
the prefix cache for the reply that follows it. A reply that calls then follows the `required`
grammar; one that answers keeps the `auto` grammar, in which a call the model opens itself is
still constrained.

A request that runs with a LoRA adapter trained to call tools (its record says `"tool_calling":
true`, like the shipped SmolLM2 one) needs no calibration: it calls when the model itself prefers
the opener, p(opener | prompt) > 1/2, and its decision to answer is final: the reply follows the
answer grammar, in which no call opens. (Under the `auto` grammar greedy decoding still opened a
call whenever the opener was merely the likeliest first token, as on most of BFCL's irrelevance
questions: see docs/benchmarks.md.)

Such an adapter prefers to call whenever tools are offered, fitting or not, so when the last turn is
the user's it also checks that the tools are relevant: that they make that turn (its last
`RELEVANCE_SPAN` tokens and the template's tail) likelier than content-free tools do (one
`do_nothing` function) by more than `RELEVANCE_MARGIN` nats:

    log p(turn | tools) - log p(turn | content-free tools) > RELEVANCE_MARGIN

The prompt's probe scores the turn together with the opener; the content-free prompt is one more
probe, whose system prompt every request shares (prefix-cached).

With one call a reply (`parallel_tool_calls=False`, as agents ask), such an adapter's call also goes
to the tool that explains that turn best: the turn is scored once more with each offered tool alone
in the prompt (up to `ONE_TOOL_PROBES` tools), and the call grammar allows only the likeliest. The
adapter by itself picks the functions it was trained on — a share-price lookup for "What is 12 * 34?"
— while the turn's likelihood follows the tool's description (docs/benchmarks.md).
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from .constraints import Constraints
from .outputs import Request
from .protocol import SamplingParams
from .scheduler import Scheduler
from .sequence import Sequence

PROBE = "\0probe"  # the request id of probe sequences
BASELINES_KEPT = 256  # tool sets whose baseline stays cached
OWN_PREFERENCE = math.log(0.5)  # the threshold of a tool-trained adapter's decision
RELEVANCE_SPAN = 256  # the most tokens of the user's turn the relevance check scores
RELEVANCE_MARGIN = 0.0  # nats the tools must add to the turn's log-likelihood
ONE_TOOL_PROBES = 8  # the most tools whose turn scores choose a one-call reply's tool


@dataclass(slots=True, eq=False)
class _Probe:
    seq: Sequence
    continuation: list[int]  # the tokens scored after the prompt
    kind: str  # "prompt", "baseline" (then `baseline` is its cache key), "neutral" or "one tool"
    baseline: tuple | None = None
    index: int = 0  # a "one tool" probe's tool
    turn: int = 0  # a prompt probe's leading continuation tokens that are the conversation's, not the opener
    logprobs: list[float] = field(default_factory=list)  # of each continuation token so far
    waiting: list[Request] = field(default_factory=list)


@dataclass(slots=True)
class _Scores:
    prompt: float | None = None  # log p(opener | prompt)
    baseline: float | None = None  # what it must exceed
    checks_relevance: bool = False
    turn: float | None = None  # then log p(turn | tools) ...
    neutral: float | None = None  # ... and log p(turn | content-free tools)
    one_tool: list[float | None] = field(default_factory=list)  # log p(turn | each tool alone)

    def ready(self) -> bool:
        return (self.prompt is not None and self.baseline is not None and None not in self.one_tool
                and (not self.checks_relevance or (self.turn is not None and self.neutral is not None)))

    def calls(self) -> bool:
        relevant = not self.checks_relevance or self.turn - self.neutral > RELEVANCE_MARGIN
        return self.prompt > self.baseline and relevant


class ToolDecisions:
    """The pending call-or-answer decisions of one engine, their probes and the cached baselines."""

    def __init__(self, scheduler: Scheduler, constraints: Constraints, seq_ids: itertools.count) -> None:
        self.scheduler, self.constraints, self.seq_ids = scheduler, constraints, seq_ids
        self.probes: dict[int, _Probe] = {}  # by seq id
        self.baselines: OrderedDict[tuple, float] = OrderedDict()
        self.scores: dict[str, _Scores] = {}  # by request id

    def start(self, request: Request) -> None:
        """Schedule the probes `request`'s decision needs; it waits for them."""
        key = (request.baseline, tuple(request.opener), request.lora.uid if request.lora else None)
        trained = _tool_trained(request)
        scores = self.scores[request.request_id] = _Scores(baseline=OWN_PREFERENCE if trained else self.baselines.get(key))
        if scores.baseline is None:
            pending = next((p for p in self.probes.values() if p.baseline == key), None)
            (pending or self._probe(list(request.baseline), request.opener, "baseline", request.lora, key)).waiting.append(request)
        prompt = request.prompt_token_ids
        turn = _shared_tail(prompt, request.neutral, request.turn) if trained and request.neutral else 0
        if turn:
            scores.checks_relevance = True
            neutral = list(request.neutral)
            self._probe(neutral[:-turn], neutral[-turn:], "neutral", request.lora).waiting.append(request)
            tail = prompt[len(prompt) - turn:]
            alones = [list(a) for a in request.one_tool_prompts]
            alones = alones if all(len(a) > turn and a[-turn:] == tail for a in alones) else []
            scores.one_tool = [None] * len(alones)
            for index, alone in enumerate(alones):
                probe = self._probe(alone[:-turn], tail, "one tool", request.lora)
                probe.index = index
                probe.waiting.append(request)
        probe = self._probe(prompt[:len(prompt) - turn], prompt[len(prompt) - turn:] + request.opener, "prompt", request.lora)
        probe.turn = turn
        probe.waiting.append(request)

    def is_probe(self, seq: Sequence) -> bool:
        return seq.seq_id in self.probes

    def add_rows(self, seq: Sequence, rows: torch.Tensor) -> list[Request]:
        """A probe's logits from this step; returns the requests whose decision is now made (their
        sequences carry the chosen grammar and wait to be scheduled)."""
        probe = self.probes[seq.seq_id]
        targets = probe.continuation[len(probe.logprobs):len(probe.logprobs) + len(rows)]
        logprobs = rows.float().log_softmax(-1)[torch.arange(len(targets)), targets]
        probe.logprobs.extend(logprobs.tolist())
        if len(probe.logprobs) < len(probe.continuation):
            return []
        del self.probes[seq.seq_id]
        self.scheduler.finish(seq)
        score = math.fsum(probe.logprobs[probe.turn:])
        if probe.kind == "baseline":
            self.baselines[probe.baseline] = score
            while len(self.baselines) > BASELINES_KEPT:
                self.baselines.popitem(last=False)
        decided = []
        for request in probe.waiting:
            scores = self.scores[request.request_id]
            if probe.kind == "baseline":
                scores.baseline = score
            elif probe.kind == "neutral":
                scores.neutral = score
            elif probe.kind == "one tool":
                scores.one_tool[probe.index] = score
            else:
                scores.prompt = score
                if probe.turn:
                    scores.turn = math.fsum(probe.logprobs[:probe.turn])
            if scores.ready():
                del self.scores[request.request_id]
                self._decide(request, scores.calls(), scores.one_tool)
                decided.append(request)
        return decided

    def abort(self, request: Request) -> None:
        """Forget `request`; a probe nobody waits for any more stops and frees its blocks."""
        self.scores.pop(request.request_id, None)
        for seq_id, probe in list(self.probes.items()):
            if request in probe.waiting:
                probe.waiting.remove(request)
                if not probe.waiting:
                    del self.probes[seq_id]
                    self.scheduler.finish(probe.seq)

    def _probe(self, prompt: list[int], continuation: list[int], kind: str, lora, baseline: tuple | None = None) -> _Probe:
        tokens = list(prompt) + continuation[:-1]
        seq = Sequence(next(self.seq_ids), PROBE, 0, tokens, len(tokens), SamplingParams(temperature=0, max_tokens=1),
                       1, score_tokens=len(continuation), lora=lora)
        probe = self.probes[seq.seq_id] = _Probe(seq, continuation, kind, baseline)
        self.scheduler.add(seq)
        return probe

    def _decide(self, request: Request, calls: bool, one_tool: list[float]) -> None:
        """A reply that calls follows the call grammar (to the likeliest tool alone, given `one_tool`
        scores), if a call fits its budget; a tool-trained adapter's answer follows the answer
        grammar without calls."""
        if not calls and not _tool_trained(request):
            return
        grammar = request.call_grammar if calls else request.answer_grammar
        if calls and one_tool:
            grammar = request.one_tool_grammars[max(range(len(one_tool)), key=one_tool.__getitem__)]
        matcher = self.constraints.matcher(grammar)
        if not self.constraints.fits(matcher, request.seqs[0].max_tokens):
            return
        for index, seq in enumerate(request.seqs):
            Constraints.attach(seq, matcher if index == 0 else matcher.deep_copy())


def _tool_trained(request: Request) -> bool:
    return request.lora is not None and bool(request.lora.meta.get("tool_calling"))


def _shared_tail(prompt: list[int], neutral: tuple[int, ...], turn: int) -> int:
    """How many of the prompt's last tokens the relevance check scores: the user's turn (`turn`
    tokens), at most RELEVANCE_SPAN, only those the content-free prompt ends with too, and never a
    whole prompt (a probe needs a token before the ones it scores)."""
    n, limit = 0, min(turn, RELEVANCE_SPAN, len(prompt) - 1, len(neutral) - 1)
    while n < limit and prompt[-1 - n] == neutral[-1 - n]:
        n += 1
    return n
