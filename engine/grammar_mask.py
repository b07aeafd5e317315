"""Applying output constraints to logits: one llguidance matcher per constrained sequence."""

from __future__ import annotations

import llguidance
import llguidance.hf
import llguidance.numpy
import torch

from .errors import InvalidRequestError

_BITS = torch.arange(32, dtype=torch.int32)


def unpack_bitmask(bitmask: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """llguidance's packed int32 bitmask as one bool per token."""
    return ((bitmask[:, :, None] >> _BITS) & 1).bool().flatten(1)[:, :vocab_size]


class GrammarBackend:
    """llguidance's view of one tokenizer; makes matchers and applies their masks to logits."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer)

    def matcher(self, grammar: str) -> llguidance.LLMatcher:
        matcher = llguidance.LLMatcher(self.tokenizer, grammar)
        if matcher.is_error():
            raise InvalidRequestError(f"output constraint failed to compile: {matcher.get_error()}")
        return matcher

    @torch.inference_mode()
    def apply(self, logits: torch.Tensor, rows: list[int], matchers: list[llguidance.LLMatcher]) -> list[str | None]:
        """Mask each row's disallowed tokens to -inf. Returns, per row, None, or why the row is at a
        dead end (its matcher failed, or it allows no token at all)."""
        bitmask = llguidance.numpy.allocate_token_bitmask(len(rows), self.tokenizer.vocab_size)
        for i, m in enumerate(matchers):
            llguidance.numpy.fill_next_token_bitmask(m, bitmask, i)
        allowed = unpack_bitmask(torch.from_numpy(bitmask), self.tokenizer.vocab_size)
        if logits.shape[1] > allowed.shape[1]:  # model vocab padded past the tokenizer's
            pad = torch.zeros(len(rows), logits.shape[1] - allowed.shape[1], dtype=torch.bool)
            allowed = torch.cat([allowed, pad], dim=1)
        index = torch.tensor(rows)
        logits[index] = logits[index].masked_fill(~allowed[:, : logits.shape[1]], float("-inf"))
        return [
            f"output constraint failed: {m.get_error()}" if m.is_error()
            else None if any_allowed else "output constraint allows no further token"
            for m, any_allowed in zip(matchers, allowed.any(dim=1).tolist())
        ]
