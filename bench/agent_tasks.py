"""Agents on the embedded SmolLM2: 20 tool-use tasks (`_agent_tasks.py`), ours against LangGraph's
prebuilt agent, in one run.

- ours, embedded: `create_react_agent` over `EngineChatModel` (the engine in this process);
- ours, served: the same agent over `OpenAIChatModel` against `agentforge serve`;
- LangGraph: `langgraph.prebuilt.create_react_agent` with `langchain-openai`'s `ChatOpenAI` against
  the same `agentforge serve` (same model, same tools, one call per reply, greedy).

Prints, per system, the success rate per kind of task, the schema-valid share of the tool calls it
emitted, and the wall time (the tasks of a system run concurrently).

    python bench/agent_tasks.py [--tool-adapters none auto]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import warnings

from _agent_tasks import TASKS, TOOLS, call_validity, succeeded
from _servers import free_port, running, tool_adapter_flags

from agentforge.agents import EngineChatModel, OpenAIChatModel, create_react_agent

MODEL = "smollm2-135m"
MAX_TOKENS = 128
STEPS = 10  # the recursion limit of each run


async def run_ours(model) -> list[tuple[str, list]]:
    agent = create_react_agent(model.bind_tools([], parallel_tool_calls=False), TOOLS)

    async def one(task):
        out = await agent.ainvoke({"messages": [task.question]}, {"recursion_limit": STEPS})
        messages = out["messages"]
        calls = [(c.function.name, c.function.arguments) for m in messages if m.role == "assistant"
                 for c in m.tool_calls or ()]
        return messages[-1].content or "", calls

    return await asyncio.gather(*(one(t) for t in TASKS))


async def run_langgraph(base_url: str) -> list[tuple[str, list]]:
    from langchain_core.tools import tool as lc_tool
    from langchain_openai import ChatOpenAI

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent as lg_create_react_agent

    tools = [lc_tool(t.func) for t in TOOLS]
    model = ChatOpenAI(model=MODEL, base_url=base_url, api_key="unused", temperature=0, max_tokens=MAX_TOKENS)
    agent = lg_create_react_agent(model.bind_tools(tools, parallel_tool_calls=False), tools)

    async def one(task):
        try:
            out = await agent.ainvoke({"messages": [("user", task.question)]}, {"recursion_limit": STEPS})
        except Exception as exc:  # LangGraph's run fails on a tool error or the recursion limit
            return f"[run failed: {type(exc).__name__}]", []
        messages = out["messages"]
        calls = [(c["name"], json.dumps(c["args"])) for m in messages if m.type == "ai" for c in m.tool_calls]
        return str(messages[-1].content), calls

    return await asyncio.gather(*(one(t) for t in TASKS))


def report(name: str, results: list[tuple[str, list]], seconds: float) -> int:
    kinds: dict[str, list[int]] = {}
    valid = total = 0
    for task, (answer, calls) in zip(TASKS, results):
        kinds.setdefault(task.kind, []).append(int(succeeded(task, answer)))
        v, n = call_validity(calls)
        valid, total = valid + v, total + n
    wins = sum(sum(v) for v in kinds.values())
    per_kind = ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in kinds.items())
    print(f"{name:34} {wins}/{len(TASKS)} ({per_kind}); tool calls schema-valid {valid}/{total}; {seconds:.0f} s",
          flush=True)
    return wins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool-adapters", nargs="+", default=["auto"], metavar="ADAPTER",
                        help="the engine's tool adapter, one pass each: auto (the shipped tool-calling LoRA), none, "
                             "or a PEFT folder (e.g. a retrained adapter, to compare it with the shipped one)")
    args = parser.parse_args()
    print(f"{len(TASKS)} tool-use tasks, {MODEL}, greedy, max_tokens {MAX_TOKENS}, recursion limit {STEPS}; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    for adapter in args.tool_adapters:
        tag = "" if adapter == "auto" else f", tool adapter {adapter}"
        start = time.time()
        folder = adapter not in ("auto", "none")
        engine = ({"lora_adapters": {"candidate": adapter}, "tool_adapter": "candidate"} if folder
                  else {"tool_adapter": None if adapter == "none" else adapter})
        model = EngineChatModel(MODEL, max_tokens=MAX_TOKENS, **engine)
        ours = asyncio.run(run_ours(model))
        report(f"agentforge (embedded engine{tag})", ours, time.time() - start)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with running([sys.executable, "-m", "agentforge.cli", "serve", "--port", str(port), *tool_adapter_flags(adapter)],
                     url):
            start = time.time()
            served = asyncio.run(run_ours(OpenAIChatModel(MODEL, base_url=f"{url}/v1", max_tokens=MAX_TOKENS)))
            report(f"agentforge (OpenAIChatModel, serve{tag})", served, time.time() - start)
            start = time.time()
            theirs = asyncio.run(run_langgraph(f"{url}/v1"))
            report(f"LangGraph prebuilt + ChatOpenAI{tag}", theirs, time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
