"""A sequence: one completion being generated, with the KV-cache state the scheduler tracks."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, auto
from typing import TYPE_CHECKING

from .protocol import Logprob, SamplingParams

if TYPE_CHECKING:
    import torch

    from .closing import Closing
    from .detokenizer import Detokenizer
    from .images import ImageInputs
    from .lora import LoRAAdapter


class SequenceStatus(Enum):
    WAITING = auto()
    RUNNING = auto()
    FINISHED = auto()


@dataclass(slots=True, eq=False)
class Sequence:
    """Token ids (prompt then output), how many of them have KV in the cache, and where.

    `num_computed_tokens` counts tokens whose keys/values are in the cache; the tokens after it
    are what the next steps must run through the model (a prompt chunk, or one decode token and
    the draft tokens speculative decoding guessed after it).
    """

    seq_id: int
    request_id: str
    index: int
    token_ids: list[int]
    num_prompt_tokens: int
    params: SamplingParams
    max_tokens: int
    status: SequenceStatus = SequenceStatus.WAITING
    num_computed_tokens: int = 0
    num_cached_tokens: int = 0
    block_table: list[int] = field(default_factory=list)
    block_hashes: list[int] = field(default_factory=list)
    generator: torch.Generator | None = None
    detokenizer: Detokenizer | None = None
    logprobs: list[Logprob] | None = None
    matcher: object | None = None  # llguidance.LLMatcher when the output is constrained
    closing: Closing | None = None  # with a matcher: how its output ends within the budget
    draft_token_ids: list[int] = field(default_factory=list)  # speculative tokens this step verifies
    score_tokens: int = 0  # a probe: it wants the logits of its last `score_tokens` positions, then ends
    lora: LoRAAdapter | None = None  # the adapter its request runs with
    images: ImageInputs | None = None  # its prompt's image tiles (a vision model's), shared by the request's completions
    finish_reason: str | None = None
    stop_reason: str | int | None = None

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def output_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens :]

    @property
    def cache_salt(self) -> int | None:
        """Where its prefix-cache hash chain starts: KV computed under an adapter is the adapter's own."""
        return self.lora.uid if self.lora is not None else None

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED


def logit_rows(seq: Sequence, first: int, n: int) -> range:
    """The positions among `first .. first + n` (this step's tokens of `seq`) whose logits the step
    needs: the last one when it ends the sequence's tokens (plus one per draft token), or for a
    probe, those among its last `score_tokens`."""
    end = first + n
    if seq.score_tokens:
        return range(max(first, seq.num_tokens - seq.score_tokens), end)
    drafted = len(seq.draft_token_ids)
    return range(end - 1 - drafted, end) if end == seq.num_tokens + drafted else range(0)
