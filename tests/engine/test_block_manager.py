"""Block manager: reference-counted sharing, the chained-hash prefix cache and LRU eviction."""

from __future__ import annotations

from agentforge.engine.block_manager import BlockManager
from agentforge.engine.protocol import SamplingParams
from agentforge.engine.sequence import Sequence


def make_seq(tokens: list[int], seq_id: int = 0) -> Sequence:
    return Sequence(seq_id, f"r{seq_id}", 0, list(tokens), len(tokens), SamplingParams(), 16)


def compute(bm: BlockManager, seq: Sequence, n: int) -> None:
    """What a step does: reserve slots for n tokens, 'compute' them, register full blocks."""
    if seq.block_table or seq.num_computed_tokens:
        assert bm.append_slots(seq, n)
    else:
        assert bm.allocate(seq, n) is not None
    seq.num_computed_tokens += n
    bm.cache_full_blocks(seq)


def test_shared_prefix_reuses_blocks_by_reference():
    bm = BlockManager(num_blocks=10, block_size=4)
    a = make_seq(list(range(10)))
    compute(bm, a, 10)  # 3 blocks: two full, one partial
    assert bm.num_free_blocks == 7
    b = make_seq(list(range(8)) + [99, 98, 97], seq_id=1)
    cached = bm.allocate(b, 11)
    assert cached == 8  # two full blocks shared
    assert b.block_table[:2] == a.block_table[:2]
    assert [bm.blocks[i].ref_count for i in a.block_table[:2]] == [2, 2]
    assert bm.num_free_blocks == 6  # only b's third block is new
    bm.free_seq(a)
    assert [bm.blocks[i].ref_count for i in b.block_table[:2]] == [1, 1]
    bm.free_seq(b)
    assert bm.num_free_blocks == 10


def test_the_last_token_is_never_served_from_cache():
    bm = BlockManager(num_blocks=10, block_size=4)
    a = make_seq(list(range(8)))
    compute(bm, a, 8)
    bm.free_seq(a)
    again = make_seq(list(range(8)), seq_id=1)
    assert bm.allocate(again, 8) == 4  # 8 tokens cached, but one must still run to give logits


def test_freed_blocks_stay_cached_and_are_evicted_tail_first():
    bm = BlockManager(num_blocks=3, block_size=2)
    old = make_seq([1, 2, 3, 4, 5])
    compute(bm, old, 5)  # blocks: [1,2] [3,4] [5]
    bm.free_seq(old)
    probe = make_seq([1, 2, 3, 4, 5], seq_id=1)
    assert bm.allocate(probe, 5) == 4  # still cached after being freed
    bm.free_seq(probe)
    other = make_seq([8, 9, 10], seq_id=2)
    compute(bm, other, 3)  # needs two blocks: the partial one and the chain's tail are evicted
    bm.free_seq(other)
    probe = make_seq([1, 2, 3, 4, 5], seq_id=3)
    assert bm.allocate(probe, 1) == 2  # the chain's head survived


def test_allocation_fails_cleanly_when_blocks_run_out():
    bm = BlockManager(num_blocks=2, block_size=4)
    a = make_seq(list(range(12)))
    assert bm.allocate(a, 12) is None
    assert a.block_table == [] and a.num_computed_tokens == 0 and bm.num_free_blocks == 2


def test_prefix_cache_can_be_disabled():
    bm = BlockManager(num_blocks=10, block_size=4, enable_prefix_caching=False)
    a = make_seq(list(range(10)))
    compute(bm, a, 10)
    assert bm.allocate(make_seq(list(range(10)), seq_id=1), 10) == 0
