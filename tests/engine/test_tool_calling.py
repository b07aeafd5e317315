"""Function calling end to end on SmolLM2: tool_choice guarantees, parallel calls, streaming."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from agentforge.engine import LLM, AsyncLLM, InvalidRequestError, SamplingParams, tool_decision
from agentforge.engine.tool_schema import tool_specs

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from _agent_tasks import TOOLS as AGENT_TOOLS  # noqa: E402


def get_weather(city: str = Field(max_length=30), unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """Get the current weather in a city.

    Args:
        city: The city's name, e.g. Paris.
        unit: The temperature unit.
    """
    return ""


def search(query: str = Field(max_length=40), max_results: int = Field(default=5, ge=1, le=10)) -> list[str]:
    """Search the web and return the titles of the top results."""
    return []


class ConvertCurrency(BaseModel):
    """Convert an amount of money from one currency to another."""

    amount: float = Field(ge=0, le=1e9)
    source: str = Field(pattern="^[A-Z]{3}$")
    target: str = Field(pattern="^[A-Z]{3}$")


TOOLS = [get_weather, search, ConvertCurrency]
SCHEMAS = {s["function"]["name"]: s["function"]["parameters"] for s in tool_specs(TOOLS)}
QUESTIONS = [
    "What's the weather like in Paris today?",
    "Find me three recipes with lentils.",
    "How much is 250 US dollars in euros?",
    "Is it raining in Tokyo? Answer in fahrenheit.",
    "Who won the 2018 football world cup?",
    "Tell me a joke about penguins.",
]


def conversations():
    return [[{"role": "user", "content": q}] for q in QUESTIONS]


def assert_valid(call, names=SCHEMAS):
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name in names
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def assert_complete_calls_valid(completion):
    """Every call is valid, but for the last one of an answer that max_tokens cut off."""
    calls = completion.tool_calls
    assert completion.finish_reason in ("tool_calls", "length")
    for call in calls[:-1] if completion.finish_reason == "length" else calls:
        assert_valid(call)


@pytest.mark.slow
@pytest.mark.parametrize("choice", ["required", "search"])
def test_required_and_named_choices_always_call_a_declared_tool_with_valid_arguments(smollm2, choice):
    tool_choice = choice if choice == "required" else {"type": "function", "function": {"name": choice}}
    params = SamplingParams(temperature=1.0, max_tokens=120, n=4, seed=11)
    outputs = smollm2.chat(conversations(), params, tools=TOOLS, tool_choice=tool_choice, parallel_tool_calls=False)
    for out in outputs:
        for completion in out.outputs:
            assert completion.finish_reason == "tool_calls", completion
            assert completion.text == ""
            assert len(completion.tool_calls) == 1
            assert_valid(completion.tool_calls[0], SCHEMAS if choice == "required" else [choice])


def test_auto_answers_with_text_or_valid_calls(smollm2):
    params = SamplingParams(temperature=1.0, max_tokens=60, n=2, seed=5)
    outputs = smollm2.chat(conversations(), params, tools=TOOLS)  # tool_choice defaults to "auto"
    for out in outputs:
        for completion in out.outputs:
            if completion.tool_calls:
                assert_complete_calls_valid(completion)
            else:
                assert completion.finish_reason in ("stop", "length")


def test_parallel_calls_are_separate_calls_with_distinct_ids(smollm2):
    messages = [{"role": "user", "content": "What's the weather in Paris, in Rome and in Berlin?"}]
    params = SamplingParams(temperature=0.8, max_tokens=120, n=4, seed=2)
    out = smollm2.chat(messages, params, tools=TOOLS, tool_choice="required")[0]
    all_ids = []
    for completion in out.outputs:
        assert_complete_calls_valid(completion)
        all_ids += [c.id for c in completion.tool_calls]
    assert len(set(all_ids)) == len(all_ids)
    assert max(len(c.tool_calls) for c in out.outputs) >= 2


def test_tool_choice_none_never_calls_and_history_with_calls_renders(smollm2):
    history = [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "-3 C and snowing"},
    ]
    out = smollm2.chat(history, SamplingParams(temperature=0, max_tokens=30), tools=TOOLS, tool_choice="none")[0]
    assert out.outputs[0].tool_calls is None and out.outputs[0].text
    assert out.outputs[0].finish_reason in ("stop", "length")


def test_auto_with_a_response_format_answers_in_json_or_calls(smollm2):
    class Answer(BaseModel):
        answer: str = Field(max_length=60)

    params = SamplingParams(temperature=1.0, max_tokens=80, n=2, seed=3)
    outputs = smollm2.chat(conversations()[4:], params, tools=TOOLS, response_format=Answer)
    for out in outputs:
        for completion in out.outputs:
            if completion.tool_calls:
                assert completion.parsed is None
                assert_complete_calls_valid(completion)
            elif completion.finish_reason == "stop":
                assert isinstance(completion.parsed, Answer)
            else:
                assert completion.finish_reason == "length"


def test_bad_tool_requests_fail_before_generation(smollm2):
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(InvalidRequestError, match="not among the tools"):
        smollm2.chat(messages, tools=TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}})
    with pytest.raises(InvalidRequestError, match="only be combined"):
        smollm2.chat(messages, tools=TOOLS, tool_choice="required", response_format={"type": "json_object"})
    with pytest.raises(InvalidRequestError, match="needs tools"):
        smollm2.chat(messages, tool_choice="required")
    assert smollm2.engine.requests == {}


@pytest.fixture(scope="module")
def async_llm(smollm2_path):
    llm = AsyncLLM(smollm2_path, max_model_len=1024)
    yield llm
    llm.shutdown()


def test_streamed_tool_call_deltas_reassemble_to_the_final_calls(async_llm, smollm2):
    messages = [{"role": "user", "content": "Weather in Paris and in Rome, please."}]
    params = SamplingParams(temperature=1.0, max_tokens=100, seed=4)

    async def collect():
        text, calls, last = "", {}, None
        async for out in async_llm.chat(messages, params, tools=TOOLS, tool_choice="required"):
            completion = out.outputs[0]
            text += completion.delta
            for d in completion.tool_call_deltas:
                if d.id is not None:
                    assert d.index == len(calls) and d.name
                    calls[d.index] = [d.id, d.name, ""]
                else:
                    assert d.name is None and d.index in calls
                calls[d.index][2] += d.arguments
            last = out
        return text, list(calls.values()), last

    text, calls, last = asyncio.run(collect())
    final = last.outputs[0]
    assert final.finish_reason in ("tool_calls", "length")
    assert text == final.text
    assert calls == [[c.id, c.function.name, c.function.arguments] for c in final.tool_calls]
    same = smollm2.chat(messages, params, tools=TOOLS, tool_choice="required")[0].outputs[0]
    assert [(c.function.name, c.function.arguments) for c in same.tool_calls] == [(n, a) for _, n, a in calls]


def test_auto_decides_per_question_and_computes_each_baseline_once(smollm2_path):
    llm = LLM(smollm2_path, max_model_len=2048, tool_adapter=None)  # the base model: calibrated decisions
    params = SamplingParams(temperature=0, max_tokens=60)
    # SmolLM2 answers a chatty "What's the weather like?" in prose (see docs/benchmarks.md, BFCL auto);
    # a request phrased as a task gets the call
    weather, joke = [{"role": "user", "content": "Get the current weather in Paris, France in celsius."}], \
        [{"role": "user", "content": "Tell me a joke about penguins."}]
    called, answered = (llm.chat(c, params, tools=TOOLS, parallel_tool_calls=False)[0].outputs[0]
                        for c in (weather, joke))
    assert called.tool_calls and called.finish_reason == "tool_calls"
    assert_valid(called.tool_calls[0])
    assert answered.tool_calls is None and answered.text and answered.finish_reason != "tool_calls"
    assert len(llm.engine.decisions.baselines) == 1  # one tool set: one baseline probe, then cached
    llm.chat([weather, joke], params, tools=TOOLS[:2])
    assert len(llm.engine.decisions.baselines) == 2
    stats = llm.stats()
    assert (stats.waiting, stats.running, stats.kv_blocks_used) == (0, 0, 0)  # every probe ended and freed


def test_the_shipped_tool_adapter_decides_by_itself(smollm2_path):
    llm = LLM(smollm2_path, max_model_len=2048)
    assert llm.engine.tool_adapter == "tools" and llm.engine.loras["tools"].meta["tool_calling"]
    params = SamplingParams(temperature=0, max_tokens=60)
    called, answered = (llm.chat([{"role": "user", "content": q}], params, tools=TOOLS, parallel_tool_calls=False)[0]
                        .outputs[0] for q in ("What's the weather like in Paris?", "Tell me a joke about penguins."))
    assert called.tool_calls and called.tool_calls[0].function.name == "get_weather"
    assert_valid(called.tool_calls[0])
    assert answered.tool_calls is None and answered.text
    assert llm.engine.decisions.baselines == {}  # no calibration probe: the adapter's own preference decides
    off = llm.chat([{"role": "user", "content": "What's the weather like in Paris?"}], SamplingParams(
        temperature=0, max_tokens=60, lora="base"), tools=TOOLS)[0].outputs[0]
    assert len(llm.engine.decisions.baselines) == 1 and off.tool_calls is None  # the base model answers in prose
    assert llm.stats().kv_blocks_used == 0


def test_a_quantized_engine_runs_the_shipped_tool_adapter_of_its_base(smollm2_path):
    """Quantized embeddings round the base's rows differently: the adapter is matched on the base as loaded."""
    llm = LLM(smollm2_path, max_model_len=2048, quantization="int4")
    assert llm.engine.tool_adapter == "tools"
    called = llm.chat([{"role": "user", "content": "What's the weather like in Paris?"}],
                      SamplingParams(temperature=0, max_tokens=60), tools=TOOLS, parallel_tool_calls=False)[0].outputs[0]
    assert called.tool_calls and called.tool_calls[0].function.name == "get_weather"
    assert_valid(called.tool_calls[0])


def test_a_tool_trained_adapters_decision_to_answer_is_final(smollm2_path, monkeypatch):
    """Under the threshold the reply answers, even where the adapter would open the call itself (the
    opener its likeliest first token)."""
    llm = LLM(smollm2_path, max_model_len=2048)
    weather = [{"role": "user", "content": "What's the weather like in Paris?"}]
    params = SamplingParams(temperature=0, max_tokens=60)
    monkeypatch.setattr(tool_decision, "OWN_PREFERENCE", 0.0)  # log 1: never sure enough to call
    answered = llm.chat(weather, params, tools=TOOLS)[0].outputs[0]
    assert answered.tool_calls is None and answered.text and "<tool_call>" not in answered.text
    assert answered.finish_reason != "tool_calls"
    monkeypatch.setattr(tool_decision, "OWN_PREFERENCE", -1e9)  # always sure: the same question calls
    assert llm.chat(weather, params, tools=TOOLS)[0].outputs[0].tool_calls


def test_a_tool_trained_adapter_answers_when_no_offered_tool_fits(smollm2_path, monkeypatch):
    """The adapter prefers the opener whenever tools are offered; the relevance check answers when the
    tools do not make the question likelier than content-free tools do, and only then."""
    llm = LLM(smollm2_path, max_model_len=2048)
    weather = [{"role": "user", "content": "Get the current weather in Paris, France in celsius."}]
    params = SamplingParams(temperature=0, max_tokens=60)
    unrelated = llm.chat(weather, params, tools=[search])[0].outputs[0]
    assert unrelated.tool_calls is None and unrelated.text and unrelated.finish_reason != "tool_calls"
    fitting = llm.chat(weather, params, tools=TOOLS)[0].outputs[0]
    assert fitting.tool_calls and fitting.tool_calls[0].function.name == "get_weather"
    monkeypatch.setattr(tool_decision, "RELEVANCE_MARGIN", -1e9)  # no check: the adapter's preference calls
    assert llm.chat(weather, params, tools=[search])[0].outputs[0].tool_calls
    assert llm.stats().kv_blocks_used == 0


def test_one_call_a_reply_goes_to_the_tool_that_explains_the_turn_best(smollm2_path, monkeypatch):
    """The shipped adapter by itself calls the share-price lookup for arithmetic; with one call a reply
    the turn is scored with each tool alone, and the call goes to the likeliest tool."""
    llm = LLM(smollm2_path, max_model_len=2048)
    ask = [{"role": "user", "content": "What is 12 * 34?"}]
    params = SamplingParams(temperature=0, max_tokens=40)
    tools = [t.spec for t in AGENT_TOOLS]  # the agent bench's: four lookups and the calculator
    (call,) = llm.chat(ask, params, tools=tools, parallel_tool_calls=False)[0].outputs[0].tool_calls
    assert call.function.name == "calculate" and "12" in call.function.arguments
    assert llm.stats().kv_blocks_used == 0 and not llm.engine.decisions.scores  # every probe ended and freed
    monkeypatch.setattr(tool_decision, "ONE_TOOL_PROBES", 0)  # no per-tool scores: the adapter's own pick
    assert [c.function.name for c in llm.chat(ask, params, tools=tools, parallel_tool_calls=False)[0].outputs[0]
            .tool_calls] == ["get_stock_price"]


def test_the_relevance_check_scores_the_users_last_turn(smollm2_path):
    llm = LLM(smollm2_path, max_model_len=2048)
    ask = [{"role": "user", "content": "What's the weather like in Paris?"}]
    request = llm.engine.make_chat_request(ask, SamplingParams(max_tokens=20), tools=TOOLS)
    tail = tool_decision._shared_tail(request.prompt_token_ids, request.neutral, request.turn)
    question = llm.engine.tokenizer.encode(ask[0]["content"], add_special_tokens=False)
    scored = llm.engine.tokenizer.decode(request.prompt_token_ids[-tail:])
    assert scored.startswith(ask[0]["content"]) and len(question) < tail < len(question) + 8  # + the template's tail
    assert request.prompt_token_ids[-tail:] == list(request.neutral[-tail:])
    llm.engine.add(request)
    assert len(llm.engine.decisions.probes) == 2  # the prompt's (turn + opener) and the content-free tools'
    llm.engine.abort_request(request.request_id)
    assert llm.engine.decisions.probes == {} and llm.stats().kv_blocks_used == 0
    answered = [*ask, {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"}]
    after_result = llm.engine.make_chat_request(answered, SamplingParams(max_tokens=20), tools=TOOLS)
    assert after_result.neutral is None  # the last turn is a tool result: the adapter's preference alone
    base = llm.engine.make_chat_request(ask, SamplingParams(max_tokens=20, lora="base"), tools=TOOLS)
    assert base.neutral is None  # the base model's decision is calibrated instead
    long_turn = [{"role": "user", "content": "weather " * 400}]
    request = llm.engine.make_chat_request(long_turn, SamplingParams(max_tokens=20), tools=TOOLS)
    assert request.turn > 400
    assert tool_decision._shared_tail(request.prompt_token_ids, request.neutral, request.turn) == tool_decision.RELEVANCE_SPAN


def test_a_request_aborted_while_its_decision_is_pending_frees_everything(smollm2_path):
    llm = LLM(smollm2_path, max_model_len=2048, tool_adapter=None)  # calibrated: a baseline and a prompt probe
    request = llm.engine.make_chat_request([{"role": "user", "content": "Weather in Rome?"}], SamplingParams(max_tokens=20),
                                           tools=TOOLS)
    llm.engine.add(request)
    assert len(llm.engine.decisions.probes) == 2 and not request.seqs[0] in llm.engine.scheduler.waiting
    out = llm.engine.abort_request(request.request_id)
    assert out.finished and out.outputs[0].finish_reason == "abort"
    assert llm.engine.decisions.probes == {} and not llm.engine.scheduler.has_unfinished()
    assert llm.stats().kv_blocks_used == 0
