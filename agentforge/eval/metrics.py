"""Deterministic metrics: the same inputs give bit-identical scores on every run. Each takes the
prediction and the reference and returns a float in [0, 1] (edit distance: a count)."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """SQuAD's answer normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(prediction == reference)


def normalized_exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


def fuzzy_match(prediction: str, reference: str) -> float:
    """rapidfuzz's normalized Indel similarity (`fuzz.ratio` / 100) of the normalized texts."""
    from rapidfuzz import fuzz

    return fuzz.ratio(normalize(prediction), normalize(reference)) / 100.0


def edit_distance(prediction: str, reference: str) -> float:
    """Levenshtein distance in characters (lower is better)."""
    from rapidfuzz.distance import Levenshtein

    return float(Levenshtein.distance(prediction, reference))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD's token F1 over normalized words."""
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def bleu(prediction: str, reference: str | Sequence[str]) -> float:
    """Sentence BLEU (sacrebleu, effective order) / 100."""
    from sacrebleu.metrics import BLEU

    refs = [reference] if isinstance(reference, str) else list(reference)
    return BLEU(effective_order=True).sentence_score(prediction, refs).score / 100.0


def chrf(prediction: str, reference: str | Sequence[str]) -> float:
    """Sentence chrF (sacrebleu) / 100."""
    from sacrebleu.metrics import CHRF

    refs = [reference] if isinstance(reference, str) else list(reference)
    return CHRF().sentence_score(prediction, refs).score / 100.0


def embedding_similarity(prediction: str, reference: str, embedder=None) -> float:
    """Cosine similarity of the two texts' embeddings (the RAG layer's local embedder by default)."""
    embedder = embedder or _default_embedder()
    a, b = embedder.embed([prediction, reference])
    return float(np.clip(a @ b, -1.0, 1.0))


def tool_calls_match(calls: Sequence[dict], expected: Sequence[dict], *, order: bool = True) -> float:
    """Trajectory check: 1.0 when the agent made exactly the `expected` calls ({"name", "args"};
    an expected call without "args" matches any arguments), in that order or, with
    `order=False`, as a multiset."""
    def same(call: dict, want: dict) -> bool:
        return call.get("name") == want.get("name") and ("args" not in want or call.get("args") == want["args"])

    if len(calls) != len(expected):
        return 0.0
    if order:
        return float(all(same(c, w) for c, w in zip(calls, expected)))
    left = list(calls)
    for want in expected:
        match = next((i for i, c in enumerate(left) if same(c, want)), None)
        if match is None:
            return 0.0
        left.pop(match)
    return 1.0


_EMBEDDER = None


def _default_embedder():
    global _EMBEDDER
    if _EMBEDDER is None:
        from agentforge.rag import LocalEmbedder

        _EMBEDDER = LocalEmbedder(dtype="float32")  # float32: identical scores on every machine
    return _EMBEDDER
