"""Smart routing: an OpenAI-compatible upstream (another AgentForge server here), aliases, rules by
model and by tools, fallback past a dead or overloaded backend, the serving backend in headers and
metrics."""

from __future__ import annotations

import socket

import httpx
import openai
import pytest

from agentforge.server import create_app
from agentforge.server.config import ServerConfig
from agentforge.server.routing import Router

MODEL = "smollm2-135m"
ASK = [{"role": "user", "content": "Say hi."}]
TOOLS = [{"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}]


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # nothing listens there once closed


@pytest.fixture(scope="module")
def upstream(server_llm, serve_app):
    return serve_app(create_app(server_llm, "upstream-model"))


@pytest.fixture(scope="module")
def routed(server_llm, serve_app, upstream):
    config = ServerConfig(
        upstreams=[{"name": "up", "url": f"{upstream}/v1", "models": ["big"], "model": "upstream-model"},
                   {"name": "dead", "url": dead_url(), "models": ["ghost"]}],
        aliases={"fast": MODEL},
        routes=[{"tools": True, "backends": ["up", "embedded"]},
                {"model": MODEL, "max_prompt_chars": 20, "backends": ["dead", "embedded"]}],
        redact_pii=True,
    )
    return serve_app(create_app(server_llm, MODEL, config))


def post(url, **body):
    return httpx.post(f"{url}/v1/chat/completions", json={"messages": ASK, "max_tokens": 4, **body}, timeout=60)


def test_models_and_aliases_route_to_their_backends(routed):
    assert [m["id"] for m in httpx.get(f"{routed}/v1/models").json()["data"]] == [MODEL, "big", "ghost", "fast", f"{MODEL}:tools"]
    big = post(routed, model="big")
    assert big.status_code == 200 and big.headers["X-AgentForge-Backend"] == "up" and big.json()["model"] == "big"
    fast = post(routed, model="fast")
    assert fast.headers["X-AgentForge-Backend"] == "embedded" and fast.json()["model"] == "fast"


def test_rules_by_tools_and_fallback_past_a_dead_backend(routed):
    with_tools = post(routed, model=MODEL, tools=TOOLS, tool_choice="required", max_tokens=40)
    assert with_tools.headers["X-AgentForge-Backend"] == "up"
    assert with_tools.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "ping"
    short = post(routed, model=MODEL)  # matches the rule that tries "dead" first
    assert short.status_code == 200 and short.headers["X-AgentForge-Backend"] == "embedded"
    nobody = post(routed, model="ghost")
    assert nobody.status_code == 503 and nobody.json()["error"]["code"] == "backends_unavailable"
    assert "dead" in nobody.json()["error"]["message"]
    metrics = httpx.get(f"{routed}/metrics").text
    assert 'backend="up"' in metrics and 'backend="embedded"' in metrics


def test_streaming_and_errors_through_an_upstream(routed):
    client = openai.OpenAI(base_url=f"{routed}/v1", api_key="unused", max_retries=0)
    chunks = list(client.chat.completions.create(model="big", messages=ASK, max_tokens=8, temperature=0, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    direct = client.chat.completions.create(model="big", messages=ASK, max_tokens=8, temperature=0)
    assert streamed == direct.choices[0].message.content and chunks[0].model == "big"
    with pytest.raises(openai.BadRequestError, match="context"):  # the upstream's 400 comes back as it is
        client.chat.completions.create(model="big", messages=[{"role": "user", "content": "word " * 3000}])


def test_an_overloaded_engine_falls_back(server_llm, serve_app, upstream):
    config = ServerConfig(upstreams=[{"name": "up", "url": f"{upstream}/v1", "model": "upstream-model"}],
                          routes=[{"backends": ["embedded", "up"]}], max_queue=-1)  # always "overloaded"
    url = serve_app(create_app(server_llm, MODEL, config))
    assert post(url, model=MODEL).headers["X-AgentForge-Backend"] == "up"


def test_bad_routing_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown backend"):
        Router.from_config(MODEL, [], {}, [{"backends": ["nowhere"]}])
    with pytest.raises(ValueError, match="unknown model"):
        Router.from_config(MODEL, [], {"a": "b"}, [])
    with pytest.raises(ValueError, match="must be http"):
        Router.from_config(MODEL, [{"name": "x", "url": "ftp://x"}], {}, [])
    with pytest.raises(ValueError, match="invalid routing configuration"):
        Router.from_config(MODEL, [{"name": "x", "url": "http://x", "colour": "red"}], {}, [])
