"""Memory: a thread keeps the conversation (checkpointer), trimmed to a token budget with the model's
own tokenizer; a store keeps facts across threads, searched by meaning (here with a tiny
bag-of-words embedding — plug in any embedding function).

    python examples/memory_agent.py
"""

import hashlib

import numpy as np

from agentforge.agents import EngineChatModel, InMemoryStore, create_react_agent, memory_tools, trim_messages
from agentforge.graphs import InMemorySaver


def embed(texts):
    vectors = np.zeros((len(texts), 256), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            vectors[row, int(hashlib.md5(word.strip(".,?!").encode()).hexdigest(), 16) % 256] += 1
    return vectors


model = EngineChatModel("smollm2-135m", max_tokens=96).bind_tools([], parallel_tool_calls=False)
store = InMemoryStore(index={"embed": embed, "dims": 256, "fields": ["text"]})
store.put(("memories",), "diet", {"text": "The user is vegetarian."})  # remembered in an earlier thread
agent = create_react_agent(model, memory_tools(("memories",)), checkpointer=InMemorySaver(), store=store,
                           prompt=lambda s: trim_messages(s["messages"], max_tokens=1000, token_counter=model))

config = {"configurable": {"thread_id": "today"}, "recursion_limit": 8}
for question in ["Use the recall tool: what do you know about my diet?", "Suggest a dinner for me."]:
    out = agent.invoke({"messages": [question]}, config)
    print(f"you> {question}\nagent> {out['messages'][-1].content}")
print("store search:", [i.value["text"] for i in store.search(("memories",), query="what does the user eat")])
