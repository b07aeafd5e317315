"""Starting the servers a benchmark compares: ours and an OpenAI-compatible peer, on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool_adapter_flags(adapter: str) -> list[str]:
    """`agentforge serve` flags for a `--tool-adapters` value: auto, none, or a PEFT folder (served
    beside the base as "candidate" and made the tool adapter)."""
    if adapter in ("auto", "none"):
        return ["--tool-adapter", adapter]
    return ["--lora", f"candidate={adapter}", "--tool-adapter", "candidate"]


def start(command: list[str], url: str, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {proc.returncode}")
        time.sleep(0.5)
    raise RuntimeError("the server did not come up")


def export_hf_folder() -> str:
    """SmolLM2 from the shipped GGUF, dequantized and saved as an HF folder (what vllm loads)."""
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    from agentforge.engine import resolve_model

    gguf = resolve_model("smollm2-135m")
    folder = tempfile.mkdtemp(prefix="smollm2-hf-")
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 quantization_config=GgufConfig(dequantize=True))
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(folder)
    return folder


@contextmanager
def running(command: list[str], url: str, env: dict | None = None):
    """A server process for the duration of a `with` block (stopped with its whole process group)."""
    proc = start(command, url, env)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
