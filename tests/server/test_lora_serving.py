"""Adapters through the OpenAI API: `model="<base>:<adapter>"`, listed in /v1/models, loaded and
unloaded at run time when the server allows it."""

import httpx
import pytest

from agentforge.engine import AsyncLLM
from agentforge.server import ServerConfig, create_app


@pytest.fixture(scope="module")
def served(tiny_llama_dir, tmp_path_factory, make_lora_adapter, serve_app):
    root = tmp_path_factory.mktemp("served-adapters")
    for name, seed in (("a0", 0), ("a1", 1)):
        make_lora_adapter(tiny_llama_dir, root / name, seed=seed)
    llm = AsyncLLM(str(tiny_llama_dir), kv_cache_bytes=1 << 26, lora_adapters={"a0": str(root / "a0")})
    url = serve_app(create_app(llm, "tiny", ServerConfig(runtime_lora_updates=True)))
    yield url, root
    llm.shutdown()


def complete(url, model, **extra):
    return httpx.post(f"{url}/v1/completions", json={"model": model, "prompt": "Once upon a time", "max_tokens": 8,
                                                     "temperature": 0, **extra}, timeout=60)


def test_adapters_are_models_of_their_own(served):
    url, _ = served
    ids = [m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]]
    assert "tiny" in ids and "tiny:a0" in ids
    base, adapted = complete(url, "tiny"), complete(url, "tiny:a0")
    assert base.status_code == adapted.status_code == 200
    assert adapted.json()["model"] == "tiny:a0"
    assert adapted.json()["choices"][0]["text"] != base.json()["choices"][0]["text"]
    chat = httpx.post(f"{url}/v1/chat/completions", json={"model": "tiny:a0", "max_tokens": 4, "temperature": 0,
                                                           "messages": [{"role": "user", "content": "Hi"}]}, timeout=60)
    assert chat.status_code == 200
    missing = complete(url, "tiny:nope")
    assert missing.status_code == 404 and "no adapter `nope`" in missing.json()["error"]["message"]


def test_load_and_unload_while_serving(served):
    url, root = served
    loaded = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "a1", "lora_path": str(root / "a1")}, timeout=60)
    assert loaded.status_code == 200 and loaded.json()["id"] == "tiny:a1"
    assert complete(url, "tiny:a1").status_code == 200
    assert any(m["id"] == "tiny:a1" for m in httpx.get(f"{url}/v1/models").json()["data"])
    bad = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "b", "lora_path": str(root / "none")})
    assert bad.status_code == 400 and "not a LoRA adapter folder" in bad.json()["error"]["message"]
    assert httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "b"}).status_code in (400, 422)
    assert httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "a1"}).status_code == 200
    assert complete(url, "tiny:a1").status_code == 404
    gone = httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "a1"})
    assert gone.status_code == 400 and "no adapter named" in gone.json()["error"]["message"]


def test_run_time_loading_is_off_by_default(tiny_llama_dir, serve_app):
    llm = AsyncLLM(str(tiny_llama_dir), kv_cache_bytes=1 << 24)
    try:
        url = serve_app(create_app(llm, "tiny", ServerConfig()))
        refused = httpx.post(f"{url}/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "/tmp"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "lora_updates_disabled"
    finally:
        llm.shutdown()
