"""Sampler filters and penalties on synthetic logits, and the incremental detokenizer."""

from __future__ import annotations

import math

import torch

from agentforge.engine import sampler as sampler_module
from agentforge.engine.detokenizer import Detokenizer
from agentforge.engine.protocol import SamplingParams
from agentforge.engine.sampler import Sampler, apply_penalties, draw, filtered_distribution
from agentforge.engine.sequence import Sequence


def seq_with(params: SamplingParams, prompt=(0,), output=()) -> Sequence:
    seq = Sequence(0, "r", 0, [*prompt, *output], len(prompt), params, 100)
    if not params.greedy:
        seq.generator = torch.Generator().manual_seed(0)
    return seq


LOGITS = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))


def kept(params: SamplingParams) -> list[int]:
    probs, ids = filtered_distribution(LOGITS.clone(), [seq_with(params)])
    return sorted(ids[0][probs[0] > 0].tolist())


def test_top_k_top_p_min_p_keep_the_right_tokens():
    assert kept(SamplingParams(top_k=2)) == [0, 1]
    assert kept(SamplingParams(top_p=0.45)) == [0]
    assert kept(SamplingParams(top_p=0.79)) == [0, 1]
    assert kept(SamplingParams(top_p=0.81)) == [0, 1, 2]
    assert kept(SamplingParams(min_p=0.5)) == [0, 1]  # p >= 0.25
    assert kept(SamplingParams()) == [0, 1, 2, 3]


def test_sampling_follows_the_distribution():
    params = SamplingParams(temperature=1.0)
    seq = seq_with(params)
    counts = torch.zeros(4)
    for _ in range(4000):
        token, _ = Sampler()(LOGITS.clone(), [seq])
        counts[token[0]] += 1
    assert torch.allclose(counts / 4000, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.03)


def reference_distribution(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Full-vocabulary sort: the textbook top-k / top-p / min-p filter, as probabilities over the vocabulary."""
    logits = logits / params.temperature
    probs = logits.softmax(-1)
    order = probs.argsort(descending=True)
    sorted_probs = probs[order]
    keep = torch.ones_like(sorted_probs, dtype=torch.bool)
    if params.top_k:
        keep[params.top_k :] = False
    if params.top_p < 1:
        keep &= sorted_probs.cumsum(-1) - sorted_probs < params.top_p
    if params.min_p:
        keep &= sorted_probs >= params.min_p * sorted_probs[0]
    out = torch.zeros_like(probs)
    out[order[keep]] = sorted_probs[keep]
    return out


def test_the_prefiltered_distribution_is_exactly_the_full_sort_one(monkeypatch):
    """Top-p rows whose candidates hold the mass, rows that need the full-sort fallback, top-k
    rows and plain rows, in one batch: each row keeps exactly the tokens a full sort keeps."""
    monkeypatch.setattr(sampler_module, "PREFILTER", 8)
    torch.manual_seed(0)
    peaked = torch.randn(2, 3000) * 4  # most mass in a few tokens: the first 8 candidates or 128 suffice
    flat = torch.randn(2, 3000) * 0.1  # mass spread thin: top_p=0.9 needs the full sort
    logits = torch.cat([peaked, flat, torch.randn(2, 3000)])
    params = [SamplingParams(top_p=0.9), SamplingParams(top_p=0.5, min_p=0.05), SamplingParams(top_p=0.9),
              SamplingParams(top_p=0.95, temperature=0.7), SamplingParams(top_k=200, top_p=0.99), SamplingParams(min_p=0.1)]
    seqs = [seq_with(p) for p in params]
    probs, ids = filtered_distribution(logits, seqs)
    for row, p in enumerate(params):
        got = torch.zeros(3000).index_add_(0, ids[row], probs[row])
        assert torch.allclose(got, reference_distribution(logits[row], p), atol=1e-6), p


def test_a_seeded_request_draws_the_same_tokens_whatever_else_is_in_the_batch():
    torch.manual_seed(1)
    logits = torch.randn(3, 500)
    params = SamplingParams(temperature=0.8, top_p=0.9, seed=7)

    def tokens(batch: list[int]) -> list[int]:
        seqs = [seq_with(params if i == 0 else SamplingParams(temperature=1.0, top_k=5)) for i in batch]
        seqs[batch.index(0)].generator = torch.Generator().manual_seed(7)
        drawn = []
        for _ in range(20):
            out, _ = Sampler()(logits[batch], seqs)
            drawn.append(out[batch.index(0)])
        return drawn

    assert tokens([0]) == tokens([1, 0, 2]) == tokens([2, 0])


def test_a_wide_rows_draw_is_the_token_its_cumulative_sum_points_at(monkeypatch):
    """Rows wider than a few chunks are looked up chunk by chunk: the same token as one vocabulary-wide
    cumulative sum, never one of probability 0, with a partial last chunk and mass at either end."""
    torch.manual_seed(0)
    width = 5 * sampler_module.CHUNK + 37
    probs = torch.rand(5, width) ** 8  # uneven
    probs[:, ::3] = 0  # tokens a filter dropped
    probs[1, : width - 1] = 0  # the last token alone, in the partial chunk
    probs[2, 2:] = 0  # the first token with any probability alone
    probs[3, 2 * sampler_module.CHUNK:] = 0  # mass in the first chunks only

    def draws(chunk: int) -> list[list[int]]:
        monkeypatch.setattr(sampler_module, "CHUNK", chunk)
        seqs = [seq_with(SamplingParams(temperature=1.0)) for _ in range(5)]
        for i, seq in enumerate(seqs):
            seq.generator = torch.Generator().manual_seed(i)
        return [draw(probs, seqs).tolist() for _ in range(200)]

    chunked = draws(sampler_module.CHUNK)
    assert chunked == draws(width)  # one cumulative sum over the row
    tokens = torch.tensor(chunked)
    assert (probs.gather(1, tokens.T) > 0).all()
    assert (tokens[:, 1] == width - 1).all() and (tokens[:, 2] == 1).all()
    assert (tokens[:, 3] < 2 * sampler_module.CHUNK).all() and len(set(tokens[:, 0].tolist())) > 100


def test_penalties():
    logits = torch.tensor([[2.0, -2.0, 1.0, 1.0]])
    apply_penalties(logits, [seq_with(SamplingParams(repetition_penalty=2.0), prompt=(0, 1))])
    assert logits.tolist() == [[1.0, -4.0, 1.0, 1.0]]
    logits = torch.zeros(1, 4)
    apply_penalties(logits, [seq_with(SamplingParams(presence_penalty=0.5, frequency_penalty=0.25), output=(2, 2, 3))])
    assert logits.tolist() == [[0.0, 0.0, -1.0, -0.75]]


def test_greedy_and_logprobs():
    tokens, logprobs = Sampler()(LOGITS.clone(), [seq_with(SamplingParams(temperature=0, logprobs=2))])
    assert tokens == [0]
    assert math.isclose(logprobs[0].logprob, math.log(0.5), rel_tol=1e-5)
    assert list(logprobs[0].top) == [0, 1]


def test_detokenizer_never_splits_utf8_and_deltas_concatenate(smollm2_tokenizer):
    text = "Café ünïcödé — 日本語のテキスト 🎉🚀 done."
    ids = smollm2_tokenizer.encode(text, add_special_tokens=False)
    detok = Detokenizer(smollm2_tokenizer, SamplingParams(), [1])
    deltas = []
    for token in ids:
        assert detok.add(token) is None
        deltas.append(detok.emit(finished=False))
    deltas.append(detok.emit(finished=True))
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == smollm2_tokenizer.decode(ids)


def test_detokenizer_holds_back_partial_stop_strings(smollm2_tokenizer):
    ids = smollm2_tokenizer.encode("The answer is 42. END of story", add_special_tokens=False)
    detok = Detokenizer(smollm2_tokenizer, SamplingParams(stop=["END of"]), [1])
    streamed = ""
    for token in ids:
        stop = detok.add(token)
        streamed += detok.emit(finished=stop is not None)
        assert "E" not in streamed  # no part of the stop string ever shows
        if stop:
            break
    assert stop == "END of" and streamed == "The answer is 42. "
