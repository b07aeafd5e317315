"""A2A under load: N concurrent streaming A2A clients for T seconds against one server on the
embedded model, then the same workload over the OpenAI-compatible API of the same server.

The server (a child process) is `create_app` with `a2a=True` serving one agent, a plain chat graph
over the server's own engine, so both phases share one engine and its KV cache. Each A2A client
sends `SendStreamingMessage` requests back to back (a new context each time) through
`RemoteAgent.stream`; a task counts as failed unless it ends `completed`. Afterwards the KV blocks
still held come from /metrics (0: nothing leaked). The ratio line is A2A's cost over plain
streaming chat on the same engine.

    python bench/a2a_load.py [--clients 32] [--seconds 60] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sys
import time

from _servers import free_port, start
from serve_load import QUESTIONS, kv_blocks_used, report
from serve_load import load as openai_load


def serve(port: int, max_tokens: int) -> None:
    """The server side: one engine, the chat agent over it at /a2a/chat, the OpenAI API at /v1."""
    import uvicorn

    from agentforge.agents import EngineChatModel, create_react_agent
    from agentforge.engine import AsyncLLM
    from agentforge.server import ServerConfig, create_app

    llm = AsyncLLM("smollm2-135m")
    agent = create_react_agent(EngineChatModel.over(llm, max_tokens=max_tokens, temperature=0.7), [], name="chat")
    config = ServerConfig(a2a=True, port=port)
    uvicorn.run(create_app(llm, "smollm2-135m", config=config, graphs={"chat": agent}), host="127.0.0.1", port=port,
                log_level="warning")


async def a2a_client(url: str, stop_at: float, stats: dict, seed: int) -> None:
    from agentforge.a2a import RemoteAgent

    rng = random.Random(seed)
    remote = RemoteAgent(url, timeout=120)
    while time.perf_counter() < stop_at:
        start, first, pieces = time.perf_counter(), None, 0
        try:
            async for event in remote.stream(rng.choice(QUESTIONS)):
                if event.kind == "text":
                    pieces += 1
                    first = first or time.perf_counter()
                elif event.kind == "done" and event.reply.state != "completed":
                    raise RuntimeError(f"task ended {event.reply.state}: {event.reply.text[:100]}")
            stats["ok"] += 1
            stats["tokens"] += pieces
            if first is not None:
                stats["ttft"].append(first - start)
        except Exception as exc:  # counted, reported
            stats["failed"] += 1
            stats["errors"].append(repr(exc)[:200])
    await remote.aclose()


async def a2a_load(url: str, clients: int, seconds: float) -> dict:
    stats = {"ok": 0, "failed": 0, "tokens": 0, "ttft": [], "errors": []}
    start = time.perf_counter()
    await asyncio.gather(*(a2a_client(url, start + seconds, stats, i) for i in range(clients)))
    stats["elapsed"] = time.perf_counter() - start
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--serve-on", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve_on:
        return serve(args.serve_on, args.max_tokens)
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start([sys.executable, __file__, "--serve-on", str(port), "--max-tokens", str(args.max_tokens)], url)
    try:
        ours = asyncio.run(a2a_load(f"{url}/a2a/chat", args.clients, args.seconds))
        time.sleep(1)
        report(f"A2A streaming ({args.clients} clients, {args.seconds:.0f} s; tok/s = text events/s)", ours,
               kv_blocks_used(url))
        chat = asyncio.run(openai_load(url, "smollm2-135m", args.clients, args.seconds, args.max_tokens))
        time.sleep(1)
        report("OpenAI streaming chat, same server", chat, kv_blocks_used(url))
        rate = lambda s: s["ok"] / s["elapsed"]  # noqa: E731
        print(f"completed requests per second, A2A / OpenAI chat: {rate(ours):.2f} / {rate(chat):.2f} = "
              f"{rate(ours) / rate(chat):.2f}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
