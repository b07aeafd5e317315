"""Batched generation with the embedded engine: several prompts, one continuous batch."""

from agentforge.engine import LLM, SamplingParams

llm = LLM("smollm2-135m")
prompts = ["The three laws of thermodynamics are", "def is_prime(n: int) -> bool:", "A good name for a cat is"]
params = SamplingParams(temperature=0.7, top_p=0.9, seed=42, max_tokens=48, stop=["\n\n"])
for out in llm.generate(prompts, params):
    print(f"--- {out.prompt!r} ({out.usage.completion_tokens} tokens, {out.outputs[0].finish_reason})")
    print(out.outputs[0].text)
