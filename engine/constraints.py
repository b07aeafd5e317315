"""What constrained decoding does around each step: matchers, token masks, and ending within the
token budget (`closing.py`)."""

from __future__ import annotations

import threading

import llguidance
import torch

from .closing import Closer, Closing
from .errors import InvalidRequestError
from .grammar_mask import GrammarBackend
from .sequence import Sequence


class Constraints:
    """Constrained decoding for one tokenizer (built on first use: ~0.5 s for a 49k vocabulary)."""

    def __init__(self, tokenizer) -> None:
        self.backend = GrammarBackend(tokenizer)
        self.closer = Closer(tokenizer, self.backend.tokenizer)

    # --- matchers ---------------------------------------------------------------------------

    def matcher(self, grammar: str, max_tokens: int | None = None) -> llguidance.LLMatcher:
        """A fresh matcher; with `max_tokens`, refuse a budget too small for any valid output."""
        matcher = self.backend.matcher(grammar)
        if max_tokens is not None and not self.fits(matcher, max_tokens):
            shortest = self.closer.path(matcher, Closing().scan, 1 << 16)
            need = f"the shortest one takes {len(shortest)} tokens" if shortest else "none was found"
            raise InvalidRequestError(f"max_tokens={max_tokens} is too small for a valid constrained output: {need}")
        return matcher

    def fits(self, matcher: llguidance.LLMatcher, max_tokens: int) -> bool:
        """Whether some valid output of `matcher`'s grammar fits in `max_tokens`."""
        return self.closer.path(matcher, Closing().scan, max_tokens) is not None

    @staticmethod
    def attach(seq: Sequence, matcher: llguidance.LLMatcher) -> None:
        seq.matcher, seq.closing = matcher, Closing()

    def mask(self, logits: torch.Tensor, seqs: list[Sequence]) -> dict[int, str]:
        """Mask the constrained rows; returns why, by seq id, for rows at a dead end."""
        constrained = [i for i, seq in enumerate(seqs) if seq.matcher is not None]
        if not constrained:
            return {}
        problems = self.backend.apply(logits, constrained, [seqs[i].matcher for i in constrained])
        return {seqs[i].seq_id: why for i, why in zip(constrained, problems) if why}

    # --- ending within the budget -----------------------------------------------------------

    def steer(self, seq: Sequence, token: int) -> int:
        """The token a constrained sequence writes: the sampled one, unless keeping it would leave
        no valid ending within the budget — then the sequence follows its closing path."""
        closing = seq.closing
        if not closing.forced:
            left = seq.max_tokens - seq.num_output_tokens - 1  # after this token
            if self.closer.path_after(seq.matcher, closing.scan, token, left) is not None:
                return token
            closing.path = self.closer.path(seq.matcher, closing.scan, left + 1)
            if closing.path is None:  # cannot happen while the invariant holds; end as the mask allows
                closing.path = []
                return token
        if closing.path:
            return closing.path.pop(0)
        return self.closer.eos if seq.matcher.is_accepting() else token

    def consume(self, seq: Sequence, token: int) -> str | None:
        """Advance `seq`'s matcher and scan past `token`; returns why it was rejected, if it was."""
        if not seq.matcher.consume_token(token):
            return f"output constraint rejected token {token}: {seq.matcher.get_error()}"
        seq.closing.scan.feed(self.closer.text(token))
        return None


_lock = threading.Lock()


def constraints_for(owner, tokenizer) -> Constraints:
    """`owner`'s Constraints, built once even when two threads ask first at the same time."""
    with _lock:
        if owner._constraints is None:
            owner._constraints = Constraints(tokenizer)
        return owner._constraints
