"""Thin adapters to other frameworks, one module per library, each an optional extra that the
core never imports:

- `agentforge.integrations.langchain` (`agentforge[langchain]`): chat model, embeddings,
  retrievers, tools and documents between LangChain and AgentForge.
- `agentforge.integrations.langgraph` (`agentforge[langchain]`): LangGraph graphs as nodes of ours
  and ours as nodes of theirs.
- `agentforge.integrations.llamaindex` (`agentforge[llamaindex]`): LLM, embeddings and retrievers
  between LlamaIndex and AgentForge, and our Chroma collections as LlamaIndex vector stores.
"""
