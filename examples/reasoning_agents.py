"""Chain of thought (free reasoning, then an answer constrained to a schema) and reflection (draft,
critique as structured output, revise) on the embedded model.

    python examples/reasoning_agents.py
"""

from pydantic import BaseModel

from agentforge.agents import EngineChatModel, create_cot_agent, create_reflection_agent

model = EngineChatModel("smollm2-135m", max_tokens=96)


class Answer(BaseModel):
    answer: str
    confident: bool


cot = create_cot_agent(model, Answer)
out = cot.invoke({"messages": ["A farmer has 3 pens with 4 sheep each. How many sheep are there?"]})
print("reasoning:", out["reasoning"][:300])
print("answer:", out["structured_response"])

reflection = create_reflection_agent(model, max_revisions=1)
out = reflection.invoke({"messages": ["Write one sentence that explains what a compiler does."]})
print("critiques:", out["critiques"])
print("final:", out["messages"][-1].content)
