"""The OpenAI-compatible API, driven by the official `openai` client against uvicorn on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
from pydantic import BaseModel

from agentforge.engine import AsyncLLM
from agentforge.server import create_app

MODEL = "smollm2-135m"


@pytest.fixture(scope="module")
def server(server_llm, serve_app):
    return serve_app(create_app(server_llm, MODEL)), server_llm


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key="unused", max_retries=0)


MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def test_models_and_health(server, client):
    # the base model, and the tool-calling adapter the engine loads for it
    assert [m.id for m in client.models.list().data] == [MODEL, f"{MODEL}:tools"]
    assert httpx.get(f"{server[0]}/health").json() == {"status": "ok"}


def test_chat_completion_matches_the_engine_and_reports_usage(server, client, smollm2):
    from agentforge.engine import SamplingParams

    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0, max_tokens=20)
    expected = smollm2.chat(MESSAGES, SamplingParams(temperature=0, max_tokens=20))[0]
    assert reply.choices[0].message.content == expected.outputs[0].text
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens == len(expected.prompt_token_ids)
    assert reply.usage.completion_tokens == len(expected.outputs[0].token_ids)


def test_streaming_deltas_concatenate_and_usage_comes_last(client):
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0, max_tokens=20, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    whole = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0, max_tokens=20)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c for c in chunks if c.choices][-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_n_seed_stop_and_logprobs(client):
    reply = client.chat.completions.create(model=MODEL, messages=MESSAGES, n=3, seed=7, temperature=1.0, max_tokens=12,
                                           logprobs=True, top_logprobs=2)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    again = client.chat.completions.create(model=MODEL, messages=MESSAGES, n=3, seed=7, temperature=1.0, max_tokens=12)
    assert [c.message.content for c in reply.choices] == [c.message.content for c in again.choices]
    content = reply.choices[0].logprobs.content
    assert content and all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)
    stopped = client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0, max_tokens=30, stop=["Paris"])
    assert "Paris" not in stopped.choices[0].message.content


def test_tools_streamed_and_not(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
              "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}},
                             "required": ["city"]}}}]
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    reply = client.chat.completions.create(model=MODEL, messages=messages, tools=tools, tool_choice="required",
                                           parallel_tool_calls=False, temperature=0, max_tokens=60)
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str) and call.id.startswith("call_")
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=tools, tool_choice="required",
                                        parallel_tool_calls=False, temperature=0, max_tokens=60) as stream:
        final = stream.get_final_completion()  # openai's own reassembly of the streamed tool-call deltas
    streamed = final.choices[0].message.tool_calls[0]
    assert (streamed.function.name, streamed.function.arguments) == (call.function.name, call.function.arguments)
    assert final.choices[0].finish_reason == "tool_calls"


def test_response_format(client):
    class City(BaseModel):
        name: str
        country: str

    parsed = client.chat.completions.parse(model=MODEL, messages=[{"role": "user", "content": "A city in Peru, as JSON."}],
                                           response_format=City, temperature=0, max_tokens=60)
    assert isinstance(parsed.choices[0].message.parsed, City)
    plain = client.chat.completions.create(model=MODEL, messages=MESSAGES, response_format={"type": "json_object"},
                                           temperature=0, max_tokens=60)
    assert isinstance(json.loads(plain.choices[0].message.content), dict)
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {
        "type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}}}
    for stream in (False, True):  # a budget no valid answer fits in is refused before anything is generated
        with pytest.raises(openai.BadRequestError, match="too small for a valid constrained output"):
            client.chat.completions.create(model=MODEL, messages=MESSAGES, response_format=schema, temperature=0,
                                           max_tokens=3, stream=stream)
    story = [{"role": "user", "content": "Tell me a long story about a dragon."}]
    tight = client.chat.completions.create(model=MODEL, messages=story, response_format=schema, temperature=0,
                                           max_tokens=8)  # the budget ends the answer: still valid JSON
    assert tight.choices[0].finish_reason == "length" and "answer" in json.loads(tight.choices[0].message.content)
    chunks = list(client.chat.completions.create(model=MODEL, messages=story, response_format=schema,
                                                 temperature=0, max_tokens=8, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(streamed) == json.loads(tight.choices[0].message.content)


@pytest.mark.slow
def test_parse_with_a_pydantic_model_at_temperature_one_for_twenty_seeds(smollm2_path, serve_app):
    """On a server with a 384-token context, so a seed that keeps listing landmarks reaches the end
    (and is closed there) in a few hundred tokens rather than two thousand."""
    llm = AsyncLLM(smollm2_path, max_model_len=384)
    try:
        _parse_twenty_seeds(serve_app(create_app(llm, MODEL)))
    finally:
        llm.shutdown()


def _parse_twenty_seeds(url: str) -> None:
    class Place(BaseModel):
        name: str
        country: str
        population: int
        landmarks: list[str]

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=900)

    async def one(seed: int) -> None:  # no max_tokens, as a user writes it: every answer must parse and validate
        try:
            reply = await client.chat.completions.parse(
                model=MODEL, messages=[{"role": "user", "content": "Describe a city."}], response_format=Place,
                temperature=1.0, seed=seed)
        except openai.LengthFinishReasonError as exc:  # a list that ran to the context's end: closed, still valid
            Place.model_validate_json(exc.completion.choices[0].message.content)
            return
        assert isinstance(reply.choices[0].message.parsed, Place), reply

    async def main() -> None:  # concurrent, as a server sees them; seeded sampling is batch-independent
        await asyncio.gather(*(one(seed) for seed in range(20)))

    asyncio.run(main())


def test_text_completions(client):
    out = client.completions.create(model=MODEL, prompt="The capital of France is", temperature=0, max_tokens=8)
    assert out.choices[0].text and out.usage.completion_tokens <= 8
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=MODEL, prompt="The capital of France is", temperature=0, max_tokens=8, stream=True) if c.choices)
    assert streamed == out.choices[0].text


def test_async_client(server):
    async def run():
        aclient = openai.AsyncOpenAI(base_url=f"{server[0]}/v1", api_key="unused", max_retries=0)
        replies = await asyncio.gather(*(aclient.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Count to {i}."}], temperature=0, max_tokens=10)
            for i in range(4)))
        await aclient.close()
        return replies

    assert all(r.choices[0].message.content for r in asyncio.run(run()))


@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"{not json", 400, None),
        (json.dumps({"model": "gpt-9", "messages": MESSAGES}).encode(), 404, "model_not_found"),
        (json.dumps({"model": MODEL, "messages": "hi"}).encode(), 400, None),
        (json.dumps({"model": MODEL, "messages": MESSAGES, "max_tokens": -5}).encode(), 400, None),
        (json.dumps({"model": MODEL, "messages": MESSAGES, "temperature": "hot"}).encode(), 400, None),
        (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "x " * 3000}]}).encode(), 400,
         "context_length_exceeded"),
        (json.dumps({"model": MODEL, "messages": MESSAGES, "tools": [{"type": "function", "function": {"name": "bad name"}}]}).encode(),
         400, None),
        (json.dumps({"model": MODEL, "messages": [{"role": "wizard", "content": "hi"}]}).encode(), 400, None),
        (json.dumps({"model": MODEL, "messages": [{"role": "user", "content": [  # a text model: images refused
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]}).encode(), 400, None),
    ],
)
def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(server, client, body, status, code):
    response = httpx.post(f"{server[0]}/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"] and error["code"] == code
    assert client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=2).choices


def test_a_huge_body_is_refused(server):
    response = httpx.post(f"{server[0]}/v1/chat/completions", content=b"x" * (10 * 1024 * 1024),
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


def test_openai_client_raises_typed_errors(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=MESSAGES)
    with pytest.raises(openai.BadRequestError, match="context"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 5000}])


def test_a_client_that_gives_up_on_a_whole_answer_aborts_its_request(server):
    url, llm = server
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 1500, "ignore_eos": True, "seed": 1}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{url}/v1/chat/completions", json=body, timeout=1.5)  # a client timeout, as LiteLLM's
    deadline = time.time() + 10
    while (llm.stats().running or llm.stats().kv_blocks_used) and time.time() < deadline:
        time.sleep(0.05)
    stats = llm.stats()
    assert (stats.waiting, stats.running, stats.kv_blocks_used) == (0, 0, 0)
    answer = httpx.post(f"{url}/v1/chat/completions", json={**body, "max_tokens": 5}, timeout=60)
    assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 5


def test_a_client_that_disconnects_mid_stream_aborts_its_request(server):
    url, llm = server
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": 400, "stream": True, "ignore_eos": True, "seed": 1}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as response:
        lines = response.iter_lines()
        for _ in range(3):
            next(lines)
        assert llm.stats().running == 1
    deadline = time.time() + 10
    while (llm.stats().running or llm.stats().kv_blocks_used) and time.time() < deadline:
        time.sleep(0.05)
    stats = llm.stats()
    assert (stats.waiting, stats.running, stats.kv_blocks_used) == (0, 0, 0)
