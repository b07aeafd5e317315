"""LlamaIndex on our engine, embedder, retrievers and Chroma collections, and its retrievers in
ours — with the real packages and the embedded SmolLM2."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("llama_index.core")
from llama_index.core import Document as LIDocument  # noqa: E402
from llama_index.core import VectorStoreIndex  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage as LIMessage  # noqa: E402
from llama_index.core.base.llms.types import ChatResponse  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.tools import FunctionTool  # noqa: E402

from agentforge.agents import ScriptedChatModel  # noqa: E402
from agentforge.integrations.llamaindex import (  # noqa: E402
    AgentForgeEmbedding,
    AgentForgeLLM,
    AgentForgeRetriever,
    chroma_vector_store,
    from_llamaindex_documents,
    from_llamaindex_retriever,
)
from agentforge.rag import KnowledgeBase  # noqa: E402

DOCS = {
    "install.md": "# Installing Zorblax\n\nRun `pip install zorblax`, then `zorblax init` to write the config file.\n",
    "pricing.md": "# Pricing\n\nThe Zorblax team plan costs 12 euros per seat per month.\n",
    "platforms.md": "# Platforms\n\nZorblax runs on Linux and macOS; Windows support is planned.\n",
}


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("li-docs")
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    kb = KnowledgeBase("li-docs", path=folder / "kb", embedder=embedder)
    assert kb.ingest(folder, patterns=["*.md"]).chunks == 3
    return kb


@pytest.fixture(scope="module")
def llm(smollm2_path):
    from agentforge.agents import EngineChatModel

    return AgentForgeLLM(model=EngineChatModel(smollm2_path, max_tokens=96, max_model_len=2048))


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def test_query_engine_answers_over_our_retriever_and_cites_the_right_file(kb, llm):
    engine = RetrieverQueryEngine.from_args(AgentForgeRetriever(kb.as_retriever(k=2)), llm=llm)
    response = engine.query("How much does the Zorblax team plan cost per seat?")
    assert response.source_nodes[0].metadata["file_name"] == "pricing.md"
    assert response.source_nodes[0].score >= response.source_nodes[1].score
    assert "12" in str(response)  # the retrieved passage reached the model


def test_our_chroma_collection_is_readable_by_llamaindex(kb, embedder):
    index = VectorStoreIndex.from_vector_store(chroma_vector_store(kb), embed_model=AgentForgeEmbedding(embedder=embedder))
    [best] = index.as_retriever(similarity_top_k=1).retrieve("Which operating systems does it run on?")
    assert best.node.metadata["source"].endswith("platforms.md") and "Linux" in best.node.get_content()
    assert best.node.metadata["section"] == "Platforms"


def test_llamaindex_retriever_serves_as_ours(kb, embedder):
    index = VectorStoreIndex.from_documents([LIDocument(text=text, metadata={"file_path": name}) for name, text in DOCS.items()],
                                            embed_model=AgentForgeEmbedding(embedder=embedder))
    ours = from_llamaindex_retriever(index.as_retriever(similarity_top_k=2))
    hits = ours.retrieve("install command")
    assert hits[0].source == "install.md" and "pip install zorblax" in hits[0].text and hits[0].score >= hits[1].score
    with pytest.raises(TypeError):
        from_llamaindex_retriever(kb)


def test_embedding_matches_our_embedder(embedder):
    embedding = AgentForgeEmbedding(embedder=embedder)
    assert embedding.get_query_embedding("tea") == pytest.approx(embedder.embed(["tea"])[0].tolist(), abs=1e-6)
    vectors = embedding.get_text_embedding_batch(["a", "b", "c"])
    assert len(vectors) == 3 and len(vectors[0]) == embedder.dim


def test_function_calling_on_the_engine_sync_streamed_and_async(llm):
    tools = [FunctionTool.from_defaults(multiply)]
    response = llm.chat_with_tools(tools, user_msg="What is 6 times 7?", tool_required=True)
    [call] = llm.get_tool_calls_from_response(response)
    assert call.tool_name == "multiply" and set(call.tool_kwargs) == {"a", "b"}
    assert tools[0](**call.tool_kwargs).raw_output == call.tool_kwargs["a"] * call.tool_kwargs["b"]
    *_, last = llm.stream_chat_with_tools(tools, user_msg="What is 3 times 5?", tool_required=True)
    assert llm.get_tool_calls_from_response(last)[0].tool_name == "multiply"
    assert llm.get_tool_calls_from_response(last)[0].tool_kwargs.keys() == {"a", "b"}
    answer = asyncio.run(llm.acomplete("Say hello."))
    assert answer.text and answer.raw["usage"]["completion_tokens"] > 0


def test_tool_results_go_back_to_the_model_in_openai_shape():
    scripted = ScriptedChatModel(["It is 42."])
    llm = AgentForgeLLM(model=scripted, context_window=2048)
    history = [LIMessage(role="user", content="6*7?"),
               LIMessage(role="assistant", content="", additional_kwargs={"tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "multiply", "arguments": '{"a": 6, "b": 7}'}}]}),
               LIMessage(role="tool", content="42", additional_kwargs={"tool_call_id": "c1", "name": "multiply"})]
    assert llm.chat(history).message.content == "It is 42."
    seen = scripted.calls[0]["messages"]
    assert seen[1].tool_calls[0].function.name == "multiply" and seen[2].tool_call_id == "c1" and seen[2].content == "42"
    assert llm.metadata.context_window == 2048 and llm.metadata.is_function_calling_model
    with pytest.raises(ValueError, match="expected at least one tool call"):
        llm.get_tool_calls_from_response(ChatResponse(message=LIMessage(role="assistant", content="no tools")))
    with pytest.raises(ValueError, match="does not take"):
        llm.chat(history, temperature=2.0)


def test_llamaindex_reader_output_is_ingested(tmp_path, embedder):
    from llama_index.core import SimpleDirectoryReader

    (tmp_path / "docs").mkdir()
    for name, text in DOCS.items():
        (tmp_path / "docs" / name).write_text(text)
    documents = SimpleDirectoryReader(str(tmp_path / "docs")).load_data()
    kb = KnowledgeBase("li-loaded", path=tmp_path / "kb", embedder=embedder)
    assert kb.add_documents(from_llamaindex_documents(documents)).added == 3
    [hit] = kb.search("seat price", k=1)
    assert hit.source.endswith("pricing.md")
    with pytest.raises(ValueError, match="file_path"):
        from_llamaindex_documents([LIDocument(text="no source")])


def test_llamaindex_function_agent_calls_a_real_tool_on_the_engine(llm):
    from llama_index.core.agent.workflow import FunctionAgent

    calls = []

    def lookup_price(plan: str) -> str:
        """Look up the monthly price of a Zorblax plan."""
        calls.append(plan)
        return "12 euros per seat"

    agent = FunctionAgent(tools=[lookup_price], llm=llm, system_prompt="Use the tools to answer.")
    async def main():
        return await agent.run("Use the lookup_price tool: what does the team plan cost?")

    result = asyncio.run(main())
    assert len(calls) >= 1 and result.tool_calls[0].tool_name == "lookup_price"
    assert result.tool_calls[0].tool_output.content == "12 euros per seat" and str(result)
