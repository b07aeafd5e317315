"""Engine behaviour on the real SmolLM2 model: prefix caching, chunked prefill, preemption, sampling
reproducibility, stop strings, n > 1, logprobs and bad input."""

from __future__ import annotations

import pytest

from agentforge.engine import (
    LLM,
    ContextLengthError,
    EngineConfig,
    InvalidRequestError,
    LLMEngine,
    SamplingParams,
)

DOCUMENT = (
    "AgentForge is a Python framework for building agent and RAG applications that run on an embedded "
    "inference engine. The engine keeps keys and values in a paged cache of fixed-size blocks, shares "
    "blocks between requests that start with the same tokens, and schedules every step with one token "
    "budget shared by decodes and chunks of long prompts. When memory runs out, the newest request is "
    "preempted and recomputed later. Graphs of agents call tools over the Model Context Protocol and "
    "retrieve passages from vector and graph stores. "
) * 3
GREEDY = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
KV_BYTES_PER_TOKEN = 30 * 2 * 3 * 64 * 4  # SmolLM2: 30 layers, K and V, 3 KV heads, head_dim 64, float32


def test_prefix_cache_computes_only_new_tokens(smollm2_path, smollm2):
    llm = LLM(smollm2_path)
    first = llm.generate(DOCUMENT + "Question: what is this text about?", GREEDY)[0]
    assert first.usage.cached_tokens == 0
    before = llm.stats().counters.num_computed_tokens
    second = llm.generate(DOCUMENT + "Question: what happens when memory runs out?", GREEDY)[0]
    computed = llm.stats().counters.num_computed_tokens - before

    cached = second.usage.cached_tokens
    assert cached >= 256 and cached % 16 == 0
    # only the uncached prompt tokens, then one token per decode step (the last sample is never fed back)
    assert computed == len(second.prompt_token_ids) - cached + GREEDY.max_tokens - 1
    uncached = LLM(smollm2_path, enable_prefix_caching=False).generate(second.prompt_token_ids, GREEDY)[0]
    assert uncached.usage.cached_tokens == 0
    assert second.outputs[0].token_ids == uncached.outputs[0].token_ids


def test_chunked_prefill_matches_one_shot(smollm2_path, smollm2):
    prompt = DOCUMENT + "Summarise the text above in one sentence."
    chunked = LLM(smollm2_path, max_num_batched_tokens=64)
    out = chunked.generate(prompt, GREEDY)[0]
    prompt_len = len(out.prompt_token_ids)
    assert prompt_len > 256
    assert chunked.stats().counters.num_steps == -(-prompt_len // 64) + GREEDY.max_tokens - 1  # prefill took several steps
    assert out.outputs[0].token_ids == smollm2.generate(prompt, GREEDY)[0].outputs[0].token_ids


def test_small_kv_budget_preempts_and_still_matches(smollm2_path, smollm2):
    prompts = [f"Request {i}: " + DOCUMENT[: 200 + 40 * i] for i in range(6)]
    params = SamplingParams(temperature=0, max_tokens=48, ignore_eos=True)
    small = LLM(smollm2_path, kv_cache_bytes=KV_BYTES_PER_TOKEN * 16 * 36)  # 36 blocks: 576 tokens in all
    outputs = small.generate(prompts, params)
    assert small.stats().counters.num_preemptions > 0
    assert all(o.finished and len(o.outputs[0].token_ids) == 48 for o in outputs)
    expected = smollm2.generate(prompts, params)
    assert [o.outputs[0].token_ids for o in outputs] == [o.outputs[0].token_ids for o in expected]
    assert small.engine.block_manager.num_free_blocks == 36


def test_seeded_sampling_is_reproducible_in_any_batch(smollm2):
    seeded = SamplingParams(temperature=1.0, top_p=0.95, seed=1234, max_tokens=24, ignore_eos=True)
    prompt = "Tell me a story about a robot."
    alone = smollm2.generate(prompt, seeded)[0].outputs[0].token_ids
    noise = SamplingParams(temperature=1.0, max_tokens=24)
    batched = smollm2.generate(["Hello there", prompt, "Once upon a time"], [noise, seeded, noise])[1]
    assert batched.outputs[0].token_ids == alone
    other_seed = SamplingParams(temperature=1.0, top_p=0.95, seed=4321, max_tokens=24, ignore_eos=True)
    assert smollm2.generate(prompt, other_seed)[0].outputs[0].token_ids != alone


def test_stop_string_ends_output_and_is_not_included(smollm2):
    prompt = "List the days of the week, separated by commas:"
    free = smollm2.generate(prompt, SamplingParams(temperature=0, max_tokens=40, ignore_eos=True))[0].outputs[0].text
    stop = free[len(free) // 2 : len(free) // 2 + 3]
    assert len(stop) == 3
    cut = free.index(stop)
    out = smollm2.generate(prompt, SamplingParams(temperature=0, max_tokens=40, stop=[stop]))[0].outputs[0]
    assert out.text == free[:cut]
    assert stop not in out.text
    assert (out.finish_reason, out.stop_reason) == ("stop", stop)
    kept = smollm2.generate(prompt, SamplingParams(temperature=0, max_tokens=40, stop=stop, include_stop_str_in_output=True))
    assert kept[0].outputs[0].text == free[: cut + len(stop)]


def test_stop_token_ids_and_max_tokens(smollm2):
    free = smollm2.generate("1, 2, 3, 4,", SamplingParams(temperature=0, max_tokens=12, ignore_eos=True))[0].outputs[0]
    assert free.finish_reason == "length" and len(free.token_ids) == 12
    stop_id = free.token_ids[5]
    first = free.token_ids.index(stop_id)
    out = smollm2.generate("1, 2, 3, 4,", SamplingParams(temperature=0, max_tokens=12, stop_token_ids=[stop_id]))[0].outputs[0]
    assert out.token_ids == free.token_ids[: first + 1]
    assert (out.finish_reason, out.stop_reason) == ("stop", stop_id)


def test_chat_stops_at_end_of_turn(smollm2):
    out = smollm2.chat([{"role": "user", "content": "What is the capital of France?"}], SamplingParams(temperature=0, max_tokens=64))
    completion = out[0].outputs[0]
    assert completion.finish_reason == "stop" and completion.stop_reason is None
    assert "Paris" in completion.text and "<|im_end|>" not in completion.text


def test_n_completions_share_the_prompt(smollm2):
    params = SamplingParams(n=3, temperature=1.0, seed=7, max_tokens=12, ignore_eos=True)
    out = smollm2.generate(DOCUMENT, params)[0]
    assert [c.index for c in out.outputs] == [0, 1, 2]
    assert all(len(c.token_ids) == 12 for c in out.outputs)
    assert len({tuple(c.token_ids) for c in out.outputs}) > 1
    assert out.usage.completion_tokens == 36
    before = smollm2.stats().counters.num_cached_tokens
    smollm2.generate("A fresh prompt about sailing boats and the open sea, " * 4, params)
    assert smollm2.stats().counters.num_cached_tokens - before >= 2 * 32  # the two forks reused the first's prompt blocks


def test_logprobs_report_the_sampled_token_and_top_alternatives(smollm2):
    out = smollm2.generate("The sky is", SamplingParams(temperature=0, max_tokens=5, logprobs=3))[0].outputs[0]
    assert len(out.logprobs) == len(out.token_ids)
    for token, lp in zip(out.token_ids, out.logprobs):
        assert lp.token_id == token and lp.logprob <= 0
        assert len(lp.top) == 3 and max(lp.top.values()) == pytest.approx(lp.logprob)


@pytest.mark.parametrize(
    "bad",
    [
        dict(temperature=-0.5), dict(temperature=float("nan")), dict(top_p=0.0), dict(top_p=1.5), dict(top_k=-3),
        dict(min_p=1.5), dict(n=0), dict(max_tokens=0), dict(repetition_penalty=0.0), dict(presence_penalty=3.0),
        dict(frequency_penalty=-2.5), dict(stop=[""]), dict(logprobs=-1), dict(seed="x"), dict(stop_token_ids=[-1]),
    ],
)
def test_invalid_sampling_values_raise(bad):
    with pytest.raises(InvalidRequestError):
        SamplingParams(**bad)


def test_bad_requests_raise_and_the_engine_keeps_serving(smollm2_path):
    engine = LLMEngine(smollm2_path, EngineConfig(max_model_len=64))
    good = engine.add_request("Hello", GREEDY)
    with pytest.raises(ContextLengthError, match="context window"):
        engine.add_request("word " * 100, GREEDY)
    with pytest.raises(ContextLengthError):
        engine.add_request("Hello", SamplingParams(max_tokens=200))
    for prompt in ("", [], [10**9], None):
        with pytest.raises(InvalidRequestError):
            engine.add_request(prompt, GREEDY)
    with pytest.raises(InvalidRequestError, match="already in use"):
        engine.add_request("Hi", GREEDY, request_id=good)
    finished = []
    while engine.has_unfinished_requests():
        finished += [o for o in engine.step() if o.finished]
    assert [o.request_id for o in finished] == [good]
    assert len(finished[0].outputs[0].token_ids) == GREEDY.max_tokens


def test_abort_returns_all_blocks(smollm2):
    engine = smollm2.engine
    total = engine.block_manager.num_free_blocks
    rid = engine.add_request(DOCUMENT, SamplingParams(temperature=0, max_tokens=100, ignore_eos=True))
    engine.step()
    engine.step()
    assert engine.block_manager.num_free_blocks < total
    out = engine.abort_request(rid)
    assert out.finished and out.outputs[0].finish_reason == "abort"
    assert engine.block_manager.num_free_blocks == total
    assert not engine.has_unfinished_requests()
