"""Speculative decoding with n-gram drafts (prompt lookup): guess the next tokens by finding the
sequence's last few tokens earlier in its prompt or output and copying what followed them there.

The model then runs the last token and the draft in one pass, and the engine samples each
position in turn, exactly as plain decoding would, keeping drafted tokens for as long as the
sample equals the draft. A draft is free to propose (no draft model) and pays off where answers
copy their context: retrieved passages, code being edited, JSON echoing its input. Sampling is
unchanged — greedy, seeded and constrained outputs are the ones plain decoding gives — because a
drafted token is kept only when an ordinary sample from the model's distribution equals it.
"""

from __future__ import annotations

import numpy as np

MAX_NGRAM = 4  # longest suffix looked up first
MIN_NGRAM = 2  # a single token recurs too often to predict what follows it
SEARCH_WINDOW = 4096  # look this many tokens back at most


def propose_ngram(token_ids: list[int], num_tokens: int) -> list[int]:
    """Up to `num_tokens` draft tokens: what followed the most recent earlier occurrence of the
    longest suffix (MAX_NGRAM down to MIN_NGRAM tokens) of `token_ids`; [] when none recurs."""
    if num_tokens < 1 or len(token_ids) <= MIN_NGRAM:
        return []
    tokens = np.asarray(token_ids[-SEARCH_WINDOW:], dtype=np.int64)
    for n in range(min(MAX_NGRAM, len(tokens) - 1), MIN_NGRAM - 1, -1):
        suffix = tokens[-n:]
        windows = np.lib.stride_tricks.sliding_window_view(tokens[:-1], n)  # every earlier n-gram
        starts = np.flatnonzero((windows == suffix).all(axis=1))
        if len(starts):
            follow = starts[-1] + n
            return tokens[follow : follow + num_tokens].tolist()
    return []
