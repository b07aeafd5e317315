"""Turn one step's logits into tokens: penalties, temperature, top-k / top-p / min-p, seeds, logprobs.

Greedy rows take the argmax. Sampled rows draw by the exponential race (argmax of p / Exp(1),
equivalent to sampling from p); a request with a seed has its own generator, so its tokens do not
depend on what else is in the batch.
"""

from __future__ import annotations

import torch

from .protocol import Logprob
from .sequence import Sequence


def apply_penalties(logits: torch.Tensor, seqs: list[Sequence]) -> None:
    """Repetition (over prompt and output, HF-style), presence and frequency (over output) penalties."""
    for row, seq in enumerate(seqs):
        p = seq.params
        if p.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(seq.token_ids)), dtype=torch.long)
            values = logits[row, seen]
            logits[row, seen] = torch.where(values > 0, values / p.repetition_penalty, values * p.repetition_penalty)
        if (p.presence_penalty or p.frequency_penalty) and seq.num_output_tokens:
            counts = torch.bincount(
                torch.tensor(seq.output_token_ids, dtype=torch.long), minlength=logits.shape[1]
            )[: logits.shape[1]].to(logits.dtype)
            logits[row] -= p.frequency_penalty * counts + p.presence_penalty * (counts > 0).to(logits.dtype)


def filter_logits(logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
    """Temperature, then top-k, top-p and min-p; filtered tokens get -inf."""
    temps = torch.tensor([s.params.temperature for s in seqs], dtype=logits.dtype)
    logits = logits / temps[:, None]
    top_k = torch.tensor([s.params.top_k or logits.shape[1] for s in seqs])
    top_p = torch.tensor([s.params.top_p for s in seqs], dtype=logits.dtype)
    min_p = torch.tensor([s.params.min_p for s in seqs], dtype=logits.dtype)
    if (top_k < logits.shape[1]).any() or (top_p < 1).any():
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        rank = torch.arange(logits.shape[1])[None, :]
        drop = rank >= top_k[:, None]
        probs = sorted_logits.softmax(dim=-1)
        drop |= ((probs.cumsum(dim=-1) - probs) >= top_p[:, None]) & (top_p < 1)[:, None]  # mass before it reached top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.empty_like(logits).scatter_(1, order, sorted_logits)
    if (min_p > 0).any():
        probs = logits.softmax(dim=-1)
        logits = logits.masked_fill(probs < min_p[:, None] * probs.max(dim=-1, keepdim=True).values, float("-inf"))
    return logits


class Sampler:
    @torch.inference_mode()
    def __call__(self, logits: torch.Tensor, seqs: list[Sequence]) -> tuple[list[int], list[Logprob | None]]:
        logits = logits.float()
        raw_logprobs = logits.log_softmax(dim=-1) if any(s.params.logprobs is not None for s in seqs) else None
        if any(s.params.repetition_penalty != 1 or s.params.presence_penalty or s.params.frequency_penalty for s in seqs):
            logits = logits.clone()
            apply_penalties(logits, seqs)
        tokens = logits.argmax(dim=-1)
        sampled = [i for i, s in enumerate(seqs) if not s.params.greedy]
        if sampled:
            rows = torch.tensor(sampled)
            probs = filter_logits(logits[rows], [seqs[i] for i in sampled]).softmax(dim=-1)
            noise = torch.empty_like(probs)
            for j, i in enumerate(sampled):
                noise[j].exponential_(generator=seqs[i].generator)
            tokens[rows] = (probs / noise).argmax(dim=-1)
        token_list = tokens.tolist()
        logprobs: list[Logprob | None] = [None] * len(seqs)
        if raw_logprobs is not None:
            for i, s in enumerate(seqs):
                k = s.params.logprobs
                if k is None:
                    continue
                top = {}
                if k:
                    values, ids = raw_logprobs[i].topk(k)
                    top = dict(zip(ids.tolist(), values.tolist()))
                logprobs[i] = Logprob(token_list[i], raw_logprobs[i, token_list[i]].item(), top)
        return token_list, logprobs
