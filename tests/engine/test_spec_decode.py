"""Speculative decoding with n-gram drafts: the proposer, and outputs identical to plain decoding
(greedy, seeded sampling, constrained, stop strings, length limits, preemption, a mixed batch)
while drafted tokens are really accepted."""

from __future__ import annotations

import pytest

from agentforge.engine import LLM, InvalidRequestError, SamplingParams, StructuredOutput
from agentforge.engine.spec_decode import propose_ngram

PASSAGE = ("The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
           "How vexingly quick daft zebras jump! Sphinx of black quartz, judge my vow.")
COPY = [{"role": "user", "content": f"Repeat this text exactly, twice:\n{PASSAGE}"}]
CODE = [{"role": "user", "content": "Write a Python function that adds two numbers, then the same function "
                                    "again with type hints."}]
KV_BYTES_PER_TOKEN = 30 * 2 * 3 * 64 * 4  # SmolLM2: 30 layers, K and V, 3 KV heads, head_dim 64, float32


@pytest.fixture(scope="module")
def spec(smollm2_path):
    return LLM(smollm2_path, speculative_tokens=5)


def outputs(llm, conversations, params):
    return [llm.chat(c, params)[0].outputs[0] for c in conversations]


def test_the_proposer_copies_what_followed_the_last_ngram():
    assert propose_ngram([1, 2, 3, 4, 5, 9, 2, 3], 3) == [4, 5, 9]  # "2 3" was followed by "4 5 9"
    assert propose_ngram([7, 1, 2, 3, 8, 1, 2, 3], 2) == [8, 1]  # the longest suffix, most recent match
    assert propose_ngram([1, 2, 1, 2], 5) == [1, 2]  # a match near the end proposes what there is
    assert propose_ngram([1, 2, 3, 4, 5, 6], 4) == []  # nothing recurs
    assert propose_ngram([5, 5, 5, 5], 0) == [] and propose_ngram([5], 3) == []


@pytest.mark.parametrize("params", [SamplingParams(temperature=0, max_tokens=48),
                                    SamplingParams(temperature=0.8, top_p=0.95, seed=7, max_tokens=48),
                                    SamplingParams(temperature=0, repetition_penalty=1.2, max_tokens=40)],
                         ids=["greedy", "seeded", "penalties"])
def test_outputs_are_those_of_plain_decoding(smollm2, spec, params):
    before = spec.stats().counters.num_accepted_tokens
    plain, drafted = outputs(smollm2, [COPY, CODE], params), outputs(spec, [COPY, CODE], params)
    assert [o.token_ids for o in drafted] == [o.token_ids for o in plain]
    assert [o.finish_reason for o in drafted] == [o.finish_reason for o in plain]
    assert spec.stats().counters.num_accepted_tokens > before  # drafts were really kept, not just proposed


def test_fewer_steps_when_the_answer_copies_its_prompt(smollm2_path, smollm2):
    params = SamplingParams(temperature=0, max_tokens=64, ignore_eos=True)
    plain, spec = LLM(smollm2_path), LLM(smollm2_path, speculative_tokens=5)
    assert outputs(spec, [COPY], params)[0].token_ids == outputs(plain, [COPY], params)[0].token_ids
    assert spec.stats().counters.num_steps < plain.stats().counters.num_steps * 0.8
    assert spec.stats().counters.num_generated_tokens == plain.stats().counters.num_generated_tokens == 64


def test_constrained_output_stays_valid_and_identical(smollm2, spec):
    schema = {"type": "object", "properties": {"text": {"type": "string"}, "words": {"type": "integer"}},
              "required": ["text", "words"]}
    json_params = SamplingParams(temperature=0, max_tokens=80, structured=StructuredOutput(json=schema))
    regex_params = SamplingParams(temperature=0.9, seed=3, max_tokens=40,
                                  structured=StructuredOutput(regex=r"(fox|dog|jugs)( (fox|dog|jugs)){5,9}"))
    for params in (json_params, regex_params):
        plain, drafted = outputs(smollm2, [COPY], params)[0], outputs(spec, [COPY], params)[0]
        assert drafted.token_ids == plain.token_ids and drafted.finish_reason == plain.finish_reason == "stop"


def test_stop_strings_and_max_tokens_are_honoured_exactly(smollm2, spec):
    for params in (SamplingParams(temperature=0, max_tokens=200, stop=["zebras"]),
                   SamplingParams(temperature=0, max_tokens=23, ignore_eos=True)):
        plain, drafted = outputs(smollm2, [COPY], params)[0], outputs(spec, [COPY], params)[0]
        assert (drafted.text, drafted.token_ids, drafted.finish_reason) == (plain.text, plain.token_ids,
                                                                           plain.finish_reason)
    assert len(drafted.token_ids) == 23 and "zebras" not in outputs(spec, [COPY], SamplingParams(
        temperature=0, max_tokens=200, stop=["zebras"]))[0].text


def test_a_mixed_batch_and_a_small_kv_cache(smollm2_path, smollm2):
    prompts = [f"Copy this, then copy it again. {PASSAGE[: 60 + 30 * i]}" for i in range(5)]
    params = SamplingParams(temperature=0, max_tokens=48, ignore_eos=True)
    small = LLM(smollm2_path, kv_cache_bytes=KV_BYTES_PER_TOKEN * 16 * 20, speculative_tokens=4,
                max_num_batched_tokens=64)  # 20 blocks: prompts are chunked and requests preempted
    got = small.generate(prompts, params)
    assert small.stats().counters.num_preemptions > 0 and small.stats().counters.num_accepted_tokens > 0
    assert [o.outputs[0].token_ids for o in got] == [o.outputs[0].token_ids for o in smollm2.generate(prompts, params)]
    assert small.engine.block_manager.num_free_blocks == 20


def test_bad_speculative_settings_are_refused(smollm2_path):
    for bad in ({"speculative_tokens": -1}, {"speculative_tokens": 2.5}, {"speculative_max_seqs": -3}):
        with pytest.raises(InvalidRequestError, match="speculative"):
            LLM(smollm2_path, **bad)
