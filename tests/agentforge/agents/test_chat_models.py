"""The chat-model interface on both backends with the real SmolLM2: the embedded engine and the same
engine behind `agentforge serve`, reached through the official `openai` client."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from agentforge.agents import EngineChatModel, OpenAIChatModel, ScriptedChatModel, create_react_agent
from agentforge.agents.engine_model import shared_engine
from agentforge.server import create_app

MODEL = "smollm2-135m"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"Sunny in {city}"


class City(BaseModel):
    name: str
    country: str


@pytest.fixture(scope="module")
def engine_model(smollm2_path):
    return EngineChatModel(smollm2_path, max_tokens=64, max_model_len=2048)


@pytest.fixture(scope="module")
def openai_model(server_llm, serve_app):
    url = serve_app(create_app(server_llm, MODEL))
    return OpenAIChatModel(MODEL, base_url=f"{url}/v1", max_tokens=64)


def test_one_engine_per_model_and_config(engine_model, smollm2_path):
    again = EngineChatModel(smollm2_path, max_tokens=5, max_model_len=2048)
    assert again.llm is engine_model.llm is shared_engine(smollm2_path, max_model_len=2048)


@pytest.mark.parametrize("backend", ["engine_model", "openai_model"])
def test_invoke_stream_and_usage(backend, request):
    model = request.getfixturevalue(backend)
    reply = model.invoke(QUESTION)
    assert reply.role == "assistant" and "Paris" in reply.content
    assert reply.usage["completion_tokens"] > 0 and reply.usage["total_tokens"] == (
        reply.usage["prompt_tokens"] + reply.usage["completion_tokens"])
    chunks = list(model.stream(QUESTION))
    assert len(chunks) > 3 and chunks[-1].message.content == reply.content
    assert "".join(c.content for c in chunks) == reply.content


def test_both_backends_give_the_same_greedy_reply_and_call(engine_model, openai_model):
    ask = [{"role": "user", "content": "What's the weather in Lyon?"}]
    engine_call = engine_model.bind_tools([get_weather], tool_choice="required").invoke(ask)
    served_call = openai_model.bind_tools([get_weather], tool_choice="required").invoke(ask)
    assert [(c.function.name, json.loads(c.function.arguments)) for c in engine_call.tool_calls] == \
        [(c.function.name, json.loads(c.function.arguments)) for c in served_call.tool_calls]
    assert engine_call.tool_calls[0].function.name == "get_weather"
    assert isinstance(json.loads(engine_call.tool_calls[0].function.arguments)["city"], str)
    assert engine_model.invoke(QUESTION).content == openai_model.invoke(QUESTION).content


@pytest.mark.parametrize("backend", ["engine_model", "openai_model"])
def test_structured_output(backend, request):
    model = request.getfixturevalue(backend)
    city = model.with_structured_output(City).invoke([{"role": "user", "content": "Describe Paris as JSON."}])
    assert isinstance(city, City) and city.name


def test_async_calls_run_concurrently_on_one_engine(engine_model):
    async def both():
        return await asyncio.gather(engine_model.ainvoke(QUESTION), engine_model.ainvoke(QUESTION))

    first, second = asyncio.run(both())
    assert first.content == second.content


def test_the_same_agent_runs_on_either_backend(engine_model, openai_model):
    outs = []
    for model in (engine_model, openai_model):
        agent = create_react_agent(model.bind_tools([], tool_choice="required"), [get_weather])
        outs.append(agent.invoke({"messages": ["What's the weather in Lyon?"]}, {"recursion_limit": 5}))
    for out in outs:
        assert [m.role for m in out["messages"]][:3] == ["user", "assistant", "tool"]
        assert out["messages"][2].content.startswith("Sunny in")


def test_bad_input_is_refused_before_any_call(engine_model):
    with pytest.raises(ValueError, match="tool_choice"):
        engine_model.bind_tools([get_weather], tool_choice="sometimes")
    with pytest.raises(ValueError, match="pydantic model class or a JSON schema"):
        engine_model.with_structured_output(int)
    with pytest.raises(ValueError, match="at least one message"):
        engine_model.invoke([])
    with pytest.raises(RuntimeError, match="call 1 has none"):
        ScriptedChatModel([]).invoke("hi")


def test_engine_tokens_stream_through_the_graph_as_they_are_generated(engine_model):
    agent = create_react_agent(engine_model, [get_weather], tool_calling="native")
    seen = []
    for mode, chunk in agent.stream({"messages": QUESTION}, stream_mode=["messages", "values"]):
        seen.append((mode, chunk))
    deltas = [c[0].content for mode, c in seen if mode == "messages" and c[0].content]
    final = [c for mode, c in seen if mode == "values"][-1]["messages"][-1]
    assert len(deltas) > 3 and "".join(deltas) == final.content
    first_delta = next(i for i, (mode, c) in enumerate(seen) if mode == "messages")
    last_values = max(i for i, (mode, _) in enumerate(seen) if mode == "values")
    assert first_delta < last_values  # the tokens came before the run's final state
