"""Shared fixtures: the shipped SmolLM2 GGUF, tiny random-weight models built on the fly, one engine
for server tests and apps on uvicorn on 127.0.0.1 (stopped after each module)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest
import torch
import uvicorn

from agentforge.engine import LLM, AsyncLLM, load_tokenizer, resolve_model
from agentforge.engine.cpus import cap_torch_threads, cpu_field, usable_cpus
from agentforge.server import ServerConfig


def pytest_configure(config):
    cap_torch_threads()  # the reference models and training run outside the engine, which caps its own


def pytest_report_header(config):
    """The CPU the suite ran on: its timings only compare on the same one (AVX2-only, AVX-512, AMX)."""
    model, flags = cpu_field("model name") or "?", cpu_field("flags").split()
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return (f"cpu: {model}, {os.cpu_count()} cpus, {usable_cpus()} usable, torch threads {torch.get_num_threads()}, "
            f"{' '.join(isa) or 'no avx2'}")


@pytest.fixture(scope="session", autouse=True)
def _data_dir(tmp_path_factory):
    """Knowledge bases made without a path (the demo's docs) go to a temporary folder, not the user's."""
    os.environ["AGENTFORGE_DATA_DIR"] = str(tmp_path_factory.mktemp("agentforge-data"))


@pytest.fixture
def browser():
    """Debian's chromium, headless, driven by Playwright; closed after the test."""
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; `make test` installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def smollm2_path():
    return resolve_model("smollm2-135m")


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_path):
    return load_tokenizer(smollm2_path)


@pytest.fixture(scope="session")
def smolvlm(tmp_path_factory, smollm2_tokenizer):
    """A tiny random SmolVLM folder, its transformers model and processor (see `_vision.py`)."""
    from _vision import build_smolvlm

    return build_smolvlm(tmp_path_factory.mktemp("smolvlm"), smollm2_tokenizer)


@pytest.fixture(scope="session", params=["2.5", "3"], ids=["qwen2.5-vl", "qwen3-vl"])
def qwen_vl(request, tmp_path_factory, smollm2_tokenizer):
    """A tiny random Qwen2.5-VL / Qwen3-VL folder, its transformers model, image processor and tokenizer."""
    from _vision import build_qwen_vl

    return build_qwen_vl(tmp_path_factory.mktemp("qwen-vl"), smollm2_tokenizer, request.param)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, smollm2_tokenizer):
    """A 2-layer random Llama (GQA) with SmolLM2's tokenizer and chat template, as an HF folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(smollm2_tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        initializer_range=0.2,
        eos_token_id=smollm2_tokenizer.eos_token_id,
    )
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    smollm2_tokenizer.save_pretrained(path)
    return path


def _make_lora_adapter(base_dir, out, seed, r=4, targets=("q_proj", "v_proj", "down_proj")):
    """A random-weight LoRA adapter (B not zero, so it changes the output); returns the merged model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(targets), init_lora_weights=False))
    for name, param in peft.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    peft.save_pretrained(out)
    return peft.merge_and_unload()


@pytest.fixture(scope="session")
def make_lora_adapter():
    """`make_lora_adapter(base_dir, out, seed)` saves a random PEFT LoRA adapter for the HF folder `base_dir`."""
    return _make_lora_adapter


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    """One shared SmolLM2 engine for tests that do not depend on engine configuration."""
    return LLM(smollm2_path)


@pytest.fixture(scope="session")
def server_llm(smollm2_path):
    """Configured as `agentforge serve` runs it: with n-gram speculative decoding."""
    llm = AsyncLLM(smollm2_path, max_model_len=2048, speculative_tokens=ServerConfig.speculative_tokens)
    yield llm
    llm.shutdown()


@pytest.fixture(scope="module")
def serve_app():
    """`serve_app(app)` runs an ASGI app on a free port and returns its base URL."""
    running = []

    def serve(app) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        running.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1 (Debian's `postgresql` package, which `make test`
    installs), started for the session and stopped after it."""
    import glob
    import os
    import shutil
    import socket
    import subprocess
    import tempfile
    from pathlib import Path

    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bindirs:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; `make test` installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    bindir = bindirs[-1]
    root = Path(tempfile.mkdtemp(prefix="agentforge-pg-"))  # not under pytest's 0700 tmp: postgres must enter it
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(as_postgres + [f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(as_postgres + [f"{bindir}/pg_ctl", "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                                  f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_postgres + [f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
