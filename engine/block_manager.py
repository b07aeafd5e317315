"""Paged KV-cache bookkeeping: fixed-size blocks, reference counts and a prefix cache.

A full block of computed tokens is identified by a chained hash (its tokens plus the hash of the
block before it), so two sequences with the same prefix share the same physical blocks without
copying. Freed blocks keep their contents and hash and are evicted least-recently-used first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .sequence import Sequence


@dataclass(slots=True)
class Block:
    block_id: int
    ref_count: int = 0
    hash: int | None = None
    token_ids: tuple[int, ...] = ()  # its `block_key`: the tokens, and hashes of image tiles among them


def chain_hash(parent: int | None, token_ids: tuple[int, ...]) -> int:
    return hash((parent, token_ids))


def block_key(seq: Sequence, start: int, end: int) -> tuple[int, ...]:
    """What a block's KV depends on: its tokens, and the content of the image tiles whose
    placeholder tokens it holds (the same placeholder ids stand for every image)."""
    tokens = tuple(seq.token_ids[start:end])
    return tokens if seq.images is None else tokens + seq.images.cache_key(start, end)


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True) -> None:
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.free: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))  # LRU first
        self.cached: dict[int, int] = {}  # chain hash -> block id

    @property
    def num_free_blocks(self) -> int:
        return len(self.free)

    def _blocks_needed(self, seq: Sequence, num_new_tokens: int) -> int:
        total = -(-(seq.num_computed_tokens + num_new_tokens) // self.block_size)
        return max(0, total - len(seq.block_table))

    def _prefix_hits(self, seq: Sequence) -> tuple[list[int], list[int]]:
        """Cached blocks matching the sequence's leading full blocks (never its last token, nor the
        tokens a probe scores: their logits must be computed)."""
        if not self.enable_prefix_caching:
            return [], []
        ids, hashes, parent = [], [], seq.cache_salt
        computed = max(1, seq.score_tokens)
        for start in range(0, seq.num_tokens - computed - self.block_size + 1, self.block_size):
            tokens = block_key(seq, start, start + self.block_size)
            h = chain_hash(parent, tokens)
            block_id = self.cached.get(h)
            if block_id is None or self.blocks[block_id].token_ids != tokens:
                break
            ids.append(block_id)
            hashes.append(h)
            parent = h
        return ids, hashes

    def allocate(self, seq: Sequence, num_new_tokens: int) -> int | None:
        """Admit a new sequence: reuse cached prefix blocks and reserve room for `num_new_tokens`
        more tokens after them. Returns how many prompt tokens came from the cache, or None (and
        changes nothing) if there are not enough free blocks."""
        assert not seq.block_table and seq.num_computed_tokens == 0
        hit_ids, hit_hashes = self._prefix_hits(seq)
        num_cached = len(hit_ids) * self.block_size
        num_new_tokens = min(num_new_tokens, seq.num_tokens - num_cached)
        reusable_free = sum(1 for b in hit_ids if self.blocks[b].ref_count == 0)
        fresh = -(-(num_cached + num_new_tokens) // self.block_size) - len(hit_ids)
        if fresh > self.num_free_blocks - reusable_free:
            return None
        for block_id in hit_ids:
            block = self.blocks[block_id]
            if block.ref_count == 0:
                del self.free[block_id]
            block.ref_count += 1
        seq.block_table = hit_ids
        seq.block_hashes = hit_hashes
        seq.num_computed_tokens = num_cached
        self.append_slots(seq, num_new_tokens)
        return num_cached

    def can_append(self, seq: Sequence, num_new_tokens: int) -> bool:
        return self._blocks_needed(seq, num_new_tokens) <= self.num_free_blocks

    def append_slots(self, seq: Sequence, num_new_tokens: int) -> bool:
        """Grow the block table so `num_new_tokens` more tokens have KV slots."""
        needed = self._blocks_needed(seq, num_new_tokens)
        if needed > self.num_free_blocks:
            return False
        for _ in range(needed):
            block_id, _ = self.free.popitem(last=False)
            block = self.blocks[block_id]
            if block.hash is not None:  # evict its cached contents
                if self.cached.get(block.hash) == block_id:
                    del self.cached[block.hash]
                block.hash, block.token_ids = None, ()
            block.ref_count = 1
            seq.block_table.append(block_id)
        return True

    def cache_full_blocks(self, seq: Sequence) -> None:
        """Register the sequence's newly completed (fully computed) blocks in the prefix cache."""
        if not self.enable_prefix_caching:
            return
        num_full = seq.num_computed_tokens // self.block_size
        for i in range(len(seq.block_hashes), num_full):
            tokens = block_key(seq, i * self.block_size, (i + 1) * self.block_size)
            h = chain_hash(seq.block_hashes[-1] if seq.block_hashes else seq.cache_salt, tokens)
            seq.block_hashes.append(h)
            block = self.blocks[seq.block_table[i]]
            if h not in self.cached:
                block.hash, block.token_ids = h, tokens
                self.cached[h] = block.block_id

    def forget_cached(self) -> None:
        """Drop every cached prefix (the model's weights changed, so their KV is stale)."""
        for block in self.blocks:
            block.hash, block.token_ids = None, ()
        self.cached.clear()

    def free_seq(self, seq: Sequence) -> None:
        """Drop the sequence's references; unreferenced blocks become evictable, tail blocks first."""
        for block_id in reversed(seq.block_table):
            block = self.blocks[block_id]
            block.ref_count -= 1
            if block.ref_count == 0:
                self.free[block_id] = None
        seq.block_table = []
        seq.block_hashes = []
        seq.num_computed_tokens = 0
