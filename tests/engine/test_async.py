"""AsyncLLM: streamed deltas, abort on early exit, errors that stay with their request."""

from __future__ import annotations

import asyncio
import threading

import pytest

from agentforge.engine import AsyncLLM, ContextLengthError, ModelNotFoundError, SamplingParams
from agentforge.engine import async_llm as async_llm_module
from agentforge.engine.llm_engine import LLMEngine


@pytest.fixture(scope="module")
def async_llm(smollm2_path):
    llm = AsyncLLM(smollm2_path, max_model_len=256)
    yield llm
    llm.shutdown()


def test_streamed_deltas_concatenate_to_the_final_text(async_llm, smollm2):
    params = SamplingParams(temperature=0, max_tokens=40, stop=["Paris is"])
    messages = [{"role": "user", "content": "Tell me about Paris, with an emoji or two 🗼."}]

    async def collect():
        deltas, last = [], None
        async for out in async_llm.chat(messages, params):
            deltas.append(out.outputs[0].delta)
            last = out
        return deltas, last

    deltas, last = asyncio.run(collect())
    assert last.finished
    assert "".join(deltas) == last.outputs[0].text
    assert all("\ufffd" not in d for d in deltas)
    assert "Paris is" not in last.outputs[0].text
    assert last.outputs[0].text == smollm2.chat(messages, params)[0].outputs[0].text


def test_leaving_the_stream_aborts_and_frees_blocks(async_llm):
    engine = async_llm.engine
    total = engine.block_manager.num_free_blocks

    async def read_three():
        seen = 0
        async for _ in async_llm.generate(
            "Count from one to one hundred:", SamplingParams(max_tokens=200, ignore_eos=True, seed=0)
        ):
            seen += 1
            if seen == 3:
                break
        for _ in range(200):  # the engine thread processes the abort
            if not engine.has_unfinished_requests():
                break
            await asyncio.sleep(0.01)

    asyncio.run(read_three())
    assert not engine.has_unfinished_requests()
    assert engine.block_manager.num_free_blocks == total


def test_explicit_abort_ends_the_stream(async_llm):
    async def run():
        outs = []
        async for out in async_llm.generate(
            "Write a long poem.", SamplingParams(max_tokens=200, ignore_eos=True, seed=0), request_id="poem"
        ):
            outs.append(out)
            if len(outs) == 2:
                async_llm.abort("poem")
        return outs

    outs = asyncio.run(run())
    assert outs[-1].finished and outs[-1].outputs[0].finish_reason == "abort"
    assert len(outs[-1].outputs[0].token_ids) < 200


def test_a_bad_request_fails_alone(async_llm):
    async def run():
        async def good():
            text = ""
            async for out in async_llm.generate("Hello, my name is", SamplingParams(temperature=0, max_tokens=16)):
                text += out.outputs[0].delta
            return out.finished, text

        task = asyncio.create_task(good())
        await asyncio.sleep(0)
        with pytest.raises(ContextLengthError):
            async for _ in async_llm.generate("word " * 400):
                pass
        return await task

    finished, text = asyncio.run(run())
    assert finished and text


def test_shutdown_ends_open_streams(tiny_llama_dir):
    llm = AsyncLLM(tiny_llama_dir)

    async def run():
        outs = []
        async for out in llm.generate("Hello", SamplingParams(max_tokens=500, ignore_eos=True)):
            outs.append(out)
            if len(outs) == 1:
                llm.shutdown()
        return outs

    outs = asyncio.run(run())
    assert outs[-1].finished and outs[-1].outputs[0].finish_reason == "abort"
    with pytest.raises(Exception, match="shut down"):
        asyncio.run(anext(llm.generate("Hello")))


def test_the_engine_is_built_on_the_thread_that_steps_it(tiny_llama_dir, monkeypatch):
    """One thread starts every parallel op of the engine, its load included: a second OpenMP team (the
    caller's, had it loaded the model) makes both sleep between ops (engine.cpus)."""
    built_on = []

    class Recorded(LLMEngine):
        def __init__(self, *args, **kwargs):
            built_on.append(threading.get_ident())
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(async_llm_module, "LLMEngine", Recorded)
    llm = AsyncLLM(tiny_llama_dir)
    try:
        assert built_on == [llm._thread.ident] != [threading.get_ident()]

        async def run():
            async for out in llm.generate("Hello", SamplingParams(max_tokens=4, ignore_eos=True)):
                last = out
            return last

        assert len(asyncio.run(run()).outputs[0].token_ids) == 4
    finally:
        llm.shutdown()


def test_a_model_that_fails_to_load_raises_in_the_caller_and_leaves_no_thread(tmp_path):
    def engine_threads() -> int:
        return sum(t.name == "agentforge-engine" and t.is_alive() for t in threading.enumerate())

    before = engine_threads()
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        AsyncLLM(tmp_path / "missing")
    assert engine_threads() == before
