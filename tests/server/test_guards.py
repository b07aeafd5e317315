"""Production guards: API keys, rate limits, prompt limits, guardrails, metrics, configuration."""

from __future__ import annotations

import httpx
import openai
import pytest

from agentforge.server import create_app
from agentforge.server.config import ServerConfig
from agentforge.server.guards import Guardrails, OutputFilter

MODEL = "smollm2-135m"
ASK = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def guarded(server_llm, serve_app):
    config = ServerConfig(api_keys=["key-a", "key-b"], max_prompt_tokens=200, deny_patterns=[r"\bsecret plan\b"],
                          redact_pii=True)
    return serve_app(create_app(server_llm, MODEL, config))


@pytest.fixture(scope="module")
def limited(server_llm, serve_app):
    return serve_app(create_app(server_llm, MODEL, ServerConfig(api_keys=["key-a", "key-b"], rate_limit_rpm=3)))


def client(url, key="key-a"):
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def test_api_keys(guarded):
    with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
        client(guarded, "wrong").models.list()
    response = httpx.get(f"{guarded}/v1/models")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert client(guarded, "key-b").models.list().data[0].id == MODEL
    assert httpx.get(f"{guarded}/health").status_code == 200  # health and metrics stay open


def test_rate_limit_per_key_with_retry_after(limited):
    c = client(limited, "key-a")
    statuses = []
    for _ in range(4):
        r = httpx.post(f"{limited}/v1/chat/completions", headers={"Authorization": "Bearer key-a"},
                       json={"model": MODEL, "messages": ASK, "max_tokens": 1})
        statuses.append(r.status_code)
    assert statuses.count(429) >= 1 and r.status_code == 429
    assert int(r.headers["Retry-After"]) > 0 and r.json()["error"]["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model=MODEL, messages=ASK, max_tokens=1)
    assert client(limited, "key-b").chat.completions.create(model=MODEL, messages=ASK, max_tokens=1).choices  # per key


def test_prompt_limit_and_deny_patterns(guarded):
    c = client(guarded, "key-b")
    with pytest.raises(openai.BadRequestError, match="at most 200"):
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 400}], max_tokens=1)
    with pytest.raises(openai.BadRequestError, match="content policy"):
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Tell me the SECRET PLAN."}])


def test_output_guardrails_redact_pii_streamed_and_not():
    rails = Guardrails(redact_pii=True)
    text = "Write to jane.doe@example.com or call +1 415-555-0134; card 4111 1111 1111 1111. Thanks!"
    assert rails.redact(text) == "Write to [email redacted] or call [phone redacted]; card [card redacted]. Thanks!"
    for size in (1, 3, 7):
        f = OutputFilter(rails)
        streamed = "".join(f.feed(text[i:i + size]) for i in range(0, len(text), size)) + f.feed("", final=True)
        assert streamed == rails.redact(text)
    assert "2026-11-25" in rails.redact("The date is 2026-11-25.")
    blocked = OutputFilter(Guardrails(deny=["forbidden"]))
    assert blocked.feed("this is forbidden") == "[the answer was withheld by a content policy]" and blocked.blocked
    assert Guardrails(max_output_chars=5).limit("abcdefgh") == "abcde"
    with pytest.raises(ValueError, match="invalid guardrail"):
        Guardrails(deny=["(unclosed"])


def test_metrics_count_requests_tokens_and_kv_usage(guarded):
    client(guarded, "key-b").chat.completions.create(model=MODEL, messages=ASK, max_tokens=3)
    text = httpx.get(f"{guarded}/metrics").text
    assert 'agentforge_requests_total{backend="embedded",endpoint="/v1/chat/completions",status="200"}' in text
    assert "agentforge_generation_tokens_total" in text and "agentforge_time_to_first_token_seconds_count" in text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line and not line.startswith("#")}
    assert values["agentforge_kv_cache_blocks_used"] == 0 and values["agentforge_kv_cache_blocks_total"] > 0
    assert values["agentforge_queue_length"] == 0


def test_config_file_env_and_overrides(tmp_path, monkeypatch):
    path = tmp_path / "agentforge.toml"
    path.write_text('[server]\nport = 9000\napi_keys = ["from-file"]\nredact_pii = true\n')
    monkeypatch.setenv("AGENTFORGE_PORT", "9100")
    monkeypatch.setenv("AGENTFORGE_DENY_PATTERNS", "foo, bar")
    monkeypatch.setenv("AGENTFORGE_KV_CACHE_DTYPE", "bfloat16")
    config = ServerConfig.load(path, host="0.0.0.0", quantization="int4")
    assert (config.port, config.api_keys, config.redact_pii, config.deny_patterns, config.host) == (
        9100, ["from-file"], True, ["foo", "bar"], "0.0.0.0")
    assert (config.quantization, config.kv_cache_dtype) == ("int4", "bfloat16")
    path.write_text("[server]\nno_such_setting = 1\n")
    with pytest.raises(ValueError, match="unknown server settings: no_such_setting"):
        ServerConfig.load(path)
    with pytest.raises(ValueError, match="not found"):
        ServerConfig.load(tmp_path / "missing.toml")


def test_backend_header(guarded):
    r = httpx.post(f"{guarded}/v1/chat/completions", headers={"Authorization": "Bearer key-b"},
                   json={"model": MODEL, "messages": ASK, "max_tokens": 1})
    assert r.headers["X-AgentForge-Backend"] == "embedded"
