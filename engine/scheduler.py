"""Continuous batching: one token budget per step, shared by decodes and chunked prefills.

Each step the running sequences go first (one token each when decoding — plus draft tokens to
verify, with speculative decoding —, the next chunk when a long prompt is still being
prefilled), then waiting sequences are admitted while budget, sequence
slots and KV blocks last. When a running sequence needs a block and none is free, the newest
running sequence is preempted: its blocks are freed and it goes back to the front of the queue,
to be recomputed later (mostly from the prefix cache).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .block_manager import BlockManager
from .config import EngineConfig
from .sequence import Sequence, SequenceStatus
from .spec_decode import propose_ngram


@dataclass(slots=True)
class ScheduledBatch:
    seqs: list[Sequence]
    num_tokens: list[int]  # tokens each sequence runs through the model this step

    def __bool__(self) -> bool:
        return bool(self.seqs)


class Scheduler:
    def __init__(self, config: EngineConfig, block_manager: BlockManager) -> None:
        self.max_num_seqs = config.max_num_seqs
        self.max_num_batched_tokens = config.max_num_batched_tokens
        self.speculative_tokens = config.speculative_tokens
        self.speculative_max_seqs = config.speculative_max_seqs
        self.block_manager = block_manager
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0

    def add(self, seq: Sequence, front: bool = False) -> None:
        seq.status = SequenceStatus.WAITING
        (self.waiting.appendleft if front else self.waiting.append)(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> ScheduledBatch:
        budget = self.max_num_batched_tokens
        batch = ScheduledBatch([], [])
        preempted = False
        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            n = min(seq.num_tokens - seq.num_computed_tokens, budget)
            if n == 1 and self._speculating(seq):
                seq.draft_token_ids = propose_ngram(seq.token_ids, min(
                    self.speculative_tokens, budget - 1, seq.max_tokens - seq.num_output_tokens - 1))
                n += len(seq.draft_token_ids)
            while not self.block_manager.append_slots(seq, n):
                victim = self.running.pop()
                self._preempt(victim)
                preempted = True
                if victim is seq:
                    break
            else:
                batch.seqs.append(seq)
                batch.num_tokens.append(n)
                budget -= n
                i += 1
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs and not preempted:
            seq = self.waiting[0]
            if self.block_manager.allocate(seq, budget) is None:
                break
            if seq.num_output_tokens == 0:  # first admission, not a recompute after preemption
                seq.num_cached_tokens = seq.num_computed_tokens
            self.waiting.popleft()
            seq.status = SequenceStatus.RUNNING
            self.running.append(seq)
            n = min(seq.num_tokens - seq.num_computed_tokens, budget)
            batch.seqs.append(seq)
            batch.num_tokens.append(n)
            budget -= n
        return batch

    def _speculating(self, seq: Sequence) -> bool:
        return (self.speculative_tokens > 0 and seq.num_output_tokens > 0
                and len(self.running) <= self.speculative_max_seqs)

    def _preempt(self, seq: Sequence) -> None:
        seq.draft_token_ids = []
        self.block_manager.free_seq(seq)
        self.num_preemptions += 1
        self.add(seq, front=True)

    def advance(self, batch: ScheduledBatch) -> list[Sequence]:
        """Record the step's computed tokens; return the sequences whose last token was reached
        (they get a new token sampled). Draft tokens count once verified (`accept_drafts`)."""
        sampled = []
        for seq, n in zip(batch.seqs, batch.num_tokens):
            seq.num_computed_tokens += n - len(seq.draft_token_ids)
            self.block_manager.cache_full_blocks(seq)
            if seq.num_computed_tokens == seq.num_tokens:
                sampled.append(seq)
        return sampled

    def accept_drafts(self, seq: Sequence, num_accepted: int) -> None:
        """The first `num_accepted` draft tokens were kept: their KV (written this step) counts."""
        seq.num_computed_tokens += num_accepted
        seq.draft_token_ids = []
        self.block_manager.cache_full_blocks(seq)

    def finish(self, seq: Sequence) -> None:
        """Remove a sequence (finished or aborted) and free its blocks."""
        if seq.status is SequenceStatus.RUNNING:
            self.running.remove(seq)
        elif seq.status is SequenceStatus.WAITING:
            self.waiting.remove(seq)
        seq.status = SequenceStatus.FINISHED
        self.block_manager.free_seq(seq)
