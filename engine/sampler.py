"""Turn one step's logits into tokens: penalties, temperature, top-k / top-p / min-p, seeds, logprobs.

Greedy rows take the argmax. Sampled rows draw by inverse CDF: one uniform number per row (from
the request's own generator, so a seeded request's tokens do not depend on what else is in the
batch) is looked up in the cumulative sum of the filtered distribution — over a whole vocabulary,
the sums of chunks of it first, then inside the one chunk the draw falls in. A top-k / top-p row is
filtered among its `PREFILTER` most likely tokens when they hold its top-p mass — exactly what a
full-vocabulary sort would keep, at a fraction of the cost — and among more (up to a full sort)
only when not.
"""

from __future__ import annotations

import torch

from .protocol import Logprob
from .sequence import Sequence

PREFILTER = 64  # candidates a top-k / top-p row is filtered among first (then 16x as many, up to all)
CHUNK = 1024  # tokens per chunk of a wide distribution's two-level cumulative sum


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


def filtered_distribution(logits: torch.Tensor, seqs: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor]:
    """Temperature, then top-k, top-p and min-p: `(probs, ids)`, each row's candidate token ids and
    their probabilities (0 where filtered out)."""
    logits = logits / torch.tensor([s.params.temperature for s in seqs], dtype=logits.dtype)[:, None]
    restricted = [i for i, s in enumerate(seqs) if s.params.top_k or s.params.top_p < 1]
    rest = [i for i in range(len(seqs)) if i not in restricted]
    if not rest or not restricted:
        return (_restricted if restricted else _unrestricted)(logits, seqs)
    parts = [(rows, fn(logits[rows], [seqs[i] for i in rows])) for rows, fn in ((restricted, _restricted), (rest, _unrestricted))]
    width = max(p.shape[1] for _, (p, _) in parts)
    probs, ids = logits.new_zeros(len(seqs), width), torch.zeros(len(seqs), width, dtype=torch.long)
    for rows, (p, t) in parts:
        probs[rows, : p.shape[1]], ids[rows, : t.shape[1]] = p, t
    return probs, ids


def _unrestricted(logits: torch.Tensor, seqs: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor]:
    """The softmax, computed in `logits`' own memory (a scaled copy): no vocabulary-wide allocations."""
    probs = logits.sub_(logits.amax(dim=-1, keepdim=True)).exp_()
    probs /= probs.sum(dim=-1, keepdim=True)
    return _min_p(probs, seqs), torch.arange(logits.shape[1]).expand_as(probs)


def _restricted(logits: torch.Tensor, seqs: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor]:
    vocab = logits.shape[1]
    top_k = [min(s.params.top_k or vocab, vocab) for s in seqs]
    probs, ids = _candidates(logits, seqs, top_k, max([PREFILTER] + [t for t in top_k if t < vocab]))
    return _min_p(probs, seqs), ids


def _candidates(logits: torch.Tensor, seqs: list[Sequence], top_k: list[int], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k / top-p among the k most likely tokens; rows whose k candidates do not hold their
    top-p mass (and have no top-k to bound them) try again with 16 times as many, up to the vocabulary."""
    vocab = logits.shape[1]
    k = min(k, vocab)
    probs, ids = _top_k_top_p(logits, seqs, top_k, k)
    short = [i for i, s in enumerate(seqs) if k < vocab and top_k[i] == vocab and probs[i].sum() < s.params.top_p]
    if short:
        more_probs, more_ids = _candidates(logits[short], [seqs[i] for i in short], [vocab] * len(short), k * 16)
        pad = more_probs.shape[1] - k
        probs, ids = torch.cat([probs, probs.new_zeros(len(seqs), pad)], 1), torch.cat([ids, ids.new_zeros(len(seqs), pad)], 1)
        probs[short], ids[short] = more_probs, more_ids
    return probs, ids


def _top_k_top_p(logits: torch.Tensor, seqs: list[Sequence], top_k: list[int], k: int) -> tuple[torch.Tensor, torch.Tensor]:
    values, ids = logits.topk(k, dim=-1) if k < logits.shape[1] else logits.sort(dim=-1, descending=True)
    probs = (values - logits.logsumexp(dim=-1, keepdim=True)).exp()  # true probabilities, not renormalized
    drop = torch.arange(k)[None, :] >= torch.tensor(top_k)[:, None]
    top_p = torch.tensor([s.params.top_p for s in seqs], dtype=probs.dtype)[:, None]
    drop |= (probs.cumsum(dim=-1) - probs >= top_p) & (top_p < 1)  # the mass before it already reached top_p
    return probs.masked_fill(drop, 0.0), ids


def _min_p(probs: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
    min_p = torch.tensor([s.params.min_p for s in seqs], dtype=probs.dtype)[:, None]
    if not (min_p > 0).any():
        return probs
    return probs.masked_fill(probs < min_p * probs.max(dim=-1, keepdim=True).values, 0.0)


def draw(probs: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
    """Column index of each row's draw: one uniform number per row, from the row's generator, looked up in
    the row's cumulative sum — for a wide row, its chunks' sums, then the sums inside the chunk the draw
    falls in (a vocabulary-wide cumulative sum was most of a sampled step's time)."""
    u = torch.cat([torch.rand(1, generator=s.generator, dtype=probs.dtype) for s in seqs])[:, None]
    rows, width = probs.shape
    if width <= 4 * CHUNK:
        return _look_up(probs.cumsum(dim=-1), u * probs.sum(dim=-1, keepdim=True))
    whole = width // CHUNK
    sums = probs[:, : whole * CHUNK].reshape(rows, whole, CHUNK).sum(dim=-1)
    if width > whole * CHUNK:
        sums = torch.cat([sums, probs[:, whole * CHUNK:].sum(dim=-1, keepdim=True)], dim=1)
    bounds = sums.cumsum(dim=-1)
    target = u * bounds[:, -1:]
    chunk = _look_up(bounds, target)[:, None]
    before = torch.where(chunk > 0, bounds.gather(1, (chunk - 1).clamp(min=0)), 0.0)
    columns = chunk * CHUNK + torch.arange(CHUNK)
    inside = probs.gather(1, columns.clamp(max=width - 1)).masked_fill(columns >= width, 0.0).cumsum(dim=-1)
    return chunk[:, 0] * CHUNK + _look_up(inside, (target - before).clamp(min=0.0))


def _look_up(cdf: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per row, the first column whose cumulative sum exceeds `target` (kept below the row's total: a
    product or difference may round up onto it, past the last token with any probability)."""
    total = cdf[:, -1:]
    return torch.searchsorted(cdf, torch.minimum(target, total.nextafter(torch.zeros_like(total))), right=True)[:, 0]


def _sample(logits: torch.Tensor, seqs: list[Sequence]) -> torch.Tensor:
    """Each row's drawn token id."""
    probs, ids = filtered_distribution(logits, seqs)
    return ids.gather(1, draw(probs, seqs)[:, None])[:, 0]


class Sampler:
    @torch.inference_mode()
    def __call__(self, logits: torch.Tensor, seqs: list[Sequence]) -> tuple[list[int], list[Logprob | None]]:
        logits = logits.float()
        raw_logprobs = logits.log_softmax(dim=-1) if any(s.params.logprobs is not None for s in seqs) else None
        if any(s.params.repetition_penalty != 1 or s.params.presence_penalty or s.params.frequency_penalty for s in seqs):
            logits = logits.clone()
            apply_penalties(logits, seqs)
        sampled = [i for i, s in enumerate(seqs) if not s.params.greedy]
        if len(sampled) == len(seqs):  # no argmax to take, no rows to pick out
            tokens = _sample(logits, seqs)
        else:
            tokens = logits.max(dim=-1).indices
            if sampled:
                rows = torch.tensor(sampled)
                tokens[rows] = _sample(logits[rows], [seqs[i] for i in sampled])
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
