"""Stream a chat answer token by token with AsyncLLM."""

import asyncio

from agentforge.engine import AsyncLLM, SamplingParams


async def main() -> None:
    llm = AsyncLLM("smollm2-135m")
    messages = [{"role": "user", "content": "Give me three tips for writing clear Python."}]
    params = SamplingParams(temperature=0.2, top_p=0.9, repetition_penalty=1.1, max_tokens=200)
    async for out in llm.chat(messages, params):
        print(out.outputs[0].delta, end="", flush=True)
    print()
    llm.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
