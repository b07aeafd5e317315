"""The ReAct agent on the real embedded SmolLM2 over 20 tool-use tasks (bench/_agent_tasks.py): every
tool call it emits is valid for its tool's schema; the success rate is measured and reported
(bench/agent_tasks.py compares it with LangGraph's prebuilt agent, docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[3] / "bench"))
from _agent_tasks import TASKS, TOOLS, call_validity, succeeded  # noqa: E402

from agentforge.agents import EngineChatModel, create_react_agent  # noqa: E402


@pytest.mark.slow
def test_every_emitted_tool_call_is_valid_and_the_success_rate_is_measured(smollm2_path, record_property):
    model = EngineChatModel(smollm2_path, max_tokens=128, max_model_len=2048).bind_tools([], parallel_tool_calls=False)
    agent = create_react_agent(model, TOOLS)

    async def run_all():
        return await asyncio.gather(*(agent.ainvoke({"messages": [t.question]}, {"recursion_limit": 10}) for t in TASKS))

    outs = asyncio.run(run_all())
    calls = [(c.function.name, c.function.arguments) for out in outs for m in out["messages"]
             if m.role == "assistant" for c in m.tool_calls or ()]
    valid, total = call_validity(calls)
    wins = sum(succeeded(t, out["messages"][-1].content) for t, out in zip(TASKS, outs))
    record_property("success_rate", f"{wins}/{len(TASKS)}")
    print(f"\nagent tool-use tasks: {wins}/{len(TASKS)} succeeded; tool calls schema-valid {valid}/{total}")
    assert total >= len(TASKS) // 4  # the agent does use its tools
    assert valid == total
    assert len(TASKS) >= 20
