"""BM25 over a knowledge base's chunks with `bm25s`, English stop words and Snowball stemming."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class BM25Index:
    def __init__(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        import bm25s
        import Stemmer

        self.ids = list(ids)
        self._stem = Stemmer.Stemmer("english").stemWords
        self._index = bm25s.BM25()
        if self.ids:
            self._index.index(self._tokenize(texts), show_progress=False)

    def _tokenize(self, texts: Sequence[str]):
        import bm25s

        return bm25s.tokenize(list(texts), stopwords="en", stemmer=self._stem, show_progress=False)

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """The best `k` (id, score) with a score above zero, among `allowed` ids when given."""
        if not self.ids:
            return []
        mask = None
        if allowed is not None:
            mask = np.fromiter((i in allowed for i in self.ids), dtype=np.float32, count=len(self.ids))
        tokens = self._tokenize([query])
        if not tokens.vocab:
            return []
        docs, scores = self._index.retrieve(tokens, k=min(k, len(self.ids)), show_progress=False, weight_mask=mask,
                                            n_threads=1)
        return [(self.ids[d], float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]
