"""LangChain on our engine, tools and retrievers, and theirs in ours — with the real packages and,
where a model answers, the embedded SmolLM2."""

from __future__ import annotations

import asyncio
import json
import warnings

import pytest

pytest.importorskip("langchain_core")
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.tools import tool as lc_tool  # noqa: E402
from langchain_core.utils.function_calling import convert_to_openai_tool  # noqa: E402
from langchain_core.vectorstores import InMemoryVectorStore  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from agentforge.agents import ScriptedChatModel  # noqa: E402
from agentforge.engine.protocol import ChatMessage  # noqa: E402
from agentforge.integrations.langchain import (  # noqa: E402
    AgentForgeEmbeddings,
    AgentForgeRetriever,
    ChatAgentForge,
    from_langchain_documents,
    from_langchain_messages,
    from_langchain_retriever,
    from_langchain_tool,
    to_langchain_messages,
    to_langchain_tool,
)
from agentforge.rag import KnowledgeBase  # noqa: E402
from agentforge.tools import tool  # noqa: E402


@tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather in a city.

    Args:
        city: The city's name.
        unit: "celsius" or "fahrenheit".
    """
    return f"It is 21 degrees {unit} and sunny in {city}."


class Order(BaseModel):
    """Place an order."""

    item: str = Field(description="what to order", min_length=1)
    quantity: int = Field(ge=1, le=10)
    express: bool = False


@tool(args_schema=Order)
def place_order(item: str, quantity: int, express: bool = False) -> dict:
    """Place an order."""
    return {"item": item, "quantity": quantity, "express": express}


@lc_tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@lc_tool
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


@pytest.fixture(scope="module")
def engine_model(smollm2_path):
    from agentforge.agents import EngineChatModel

    return EngineChatModel(smollm2_path, max_tokens=96, max_model_len=2048)


# --- tools and messages: no model needed --------------------------------------------------------


@pytest.mark.parametrize("ours", [get_weather, place_order], ids=["function", "pydantic"])
def test_our_tools_keep_their_schema_in_langchain_and_back(ours):
    theirs = to_langchain_tool(ours)
    assert convert_to_openai_tool(theirs) == ours.spec
    assert from_langchain_tool(theirs).spec == ours.spec


def test_langchain_tools_keep_their_schema_in_ours_and_back():
    ours = from_langchain_tool(multiply)
    assert ours.spec == convert_to_openai_tool(multiply)
    assert convert_to_openai_tool(to_langchain_tool(ours)) == convert_to_openai_tool(multiply)


def test_tool_calls_cross_both_ways_and_failures_come_back_as_errors():
    assert to_langchain_tool(place_order).invoke({"item": "tea", "quantity": 2}) == \
        '{"item": "tea", "quantity": 2, "express": false}'
    bad = to_langchain_tool(place_order).invoke({"item": "tea", "quantity": 99})  # schema says at most 10
    assert "quantity" in bad and "less than or equal to 10" in bad
    call = {"name": "get_weather", "args": {"city": 7}, "id": "c1", "type": "tool_call"}
    message = to_langchain_tool(get_weather).invoke(call)
    assert isinstance(message, ToolMessage) and message.status == "error" and message.tool_call_id == "c1"

    assert from_langchain_tool(multiply).invoke({"a": 6, "b": 7}).content == "42"
    failed = from_langchain_tool(explode).invoke({"reason": "test"})
    assert failed.is_error and "boom: test" in failed.content
    assert from_langchain_tool(multiply).invoke({"a": "six"}).is_error


def test_messages_round_trip_with_tool_calls_and_ids():
    ours = [ChatMessage(role="system", content="Be brief.", id="s"),
            ChatMessage(role="user", content="Weather?", id="u"),
            ChatMessage(role="assistant", content="", id="a", tool_calls=[
                {"id": "call_1", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]),
            ChatMessage(role="tool", content="cold", tool_call_id="call_1", name="get_weather", id="t", status="success")]
    theirs = to_langchain_messages(ours)
    assert [type(m) for m in theirs] == [SystemMessage, HumanMessage, AIMessage, ToolMessage]
    assert theirs[2].tool_calls == [{"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_1", "type": "tool_call"}]
    back = from_langchain_messages(theirs)
    assert [m.model_dump(exclude_none=True) for m in back] == [m.model_dump(exclude_none=True) for m in ours]
    broken = to_langchain_messages([{"role": "assistant", "content": "", "tool_calls": [
        {"id": "c", "function": {"name": "f", "arguments": "{not json"}}]}])[0]
    assert broken.tool_calls == [] and broken.invalid_tool_calls[0]["args"] == "{not json"


# --- the chat model, scripted: what LangChain sends arrives, what comes back is LangChain's ------


def test_bound_tools_and_choice_reach_our_model_and_calls_come_back():
    scripted = ScriptedChatModel([{"content": "", "tool_calls": [{"name": "multiply", "args": {"a": 2, "b": 3}, "id": "c7"}]}])
    reply = ChatAgentForge(model=scripted).bind_tools([multiply, get_weather], tool_choice="multiply").invoke("2*3?")
    assert reply.tool_calls == [{"name": "multiply", "args": {"a": 2, "b": 3}, "id": "c7", "type": "tool_call"}]
    assert scripted.calls[0]["tools"] == ["multiply", "get_weather"]
    assert scripted.calls[0]["tool_choice"] == {"type": "function", "function": {"name": "multiply"}}
    with pytest.raises(ValueError, match="names none of the bound tools"):
        ChatAgentForge(model=scripted).bind_tools([multiply], tool_choice="divide")


def test_bad_options_are_refused_with_a_clear_error():
    llm = ChatAgentForge(model=ScriptedChatModel(["hi"]))
    with pytest.raises(ValueError, match="does not take logit_bias"):
        llm.invoke("x", logit_bias={1: 2})
    with pytest.raises(ValueError, match="takes no stop strings"):
        llm.invoke("x", stop=["\n"])
    with pytest.raises(ValueError, match="method must be"):
        llm.with_structured_output(Order, method="xml")
    with pytest.raises(TypeError):
        ChatAgentForge(model=42)


def test_structured_output_parse_errors_surface_with_include_raw():
    llm = ChatAgentForge(model=ScriptedChatModel(["not json"]))
    out = llm.with_structured_output(Order, include_raw=True).invoke("order")
    assert out["parsed"] is None and out["parsing_error"] is not None and out["raw"].content == "not json"


def test_json_mode_constrains_to_an_object_and_parses_with_the_schema_if_given():
    scripted = ScriptedChatModel(['{"item": "tea", "quantity": 2}', '{"any": [1, 2]}'])
    llm = ChatAgentForge(model=scripted)
    assert llm.with_structured_output(Order, method="json_mode").invoke("order tea") == Order(item="tea", quantity=2)
    assert llm.with_structured_output(method="json_mode").invoke("anything") == {"any": [1, 2]}
    assert [c["response_format"] for c in scripted.calls] == [{"type": "object"}] * 2
    with pytest.raises(ValueError, match="needs a schema"):
        llm.with_structured_output(None)


# --- on the embedded SmolLM2 ---------------------------------------------------------------------


def test_langgraph_prebuilt_react_agent_calls_a_real_tool(engine_model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langgraph.prebuilt import create_react_agent

    cities = []

    @lc_tool
    def weather(city: str) -> str:
        """Get the current weather in a city."""
        cities.append(city)
        return f"It is 21 degrees and sunny in {city}."

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated for langchain.agents.create_agent, which wraps the same loop
        agent = create_react_agent(ChatAgentForge(model=engine_model), [weather])
    messages = agent.invoke({"messages": [("user", "What is the weather in Paris?")]})["messages"]
    assert cities == ["Paris"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[1].tool_calls[0]["args"] == {"city": "Paris"} and messages[1].usage_metadata["output_tokens"] > 0
    assert messages[2].content == "It is 21 degrees and sunny in Paris." and messages[3].content


def test_lcel_chain_streams_tokens_and_ends_with_usage(engine_model):
    llm = ChatAgentForge(model=engine_model)
    prompt = ChatPromptTemplate.from_messages([("system", "You are terse."), ("user", "Name a color of {thing}.")])
    pieces = list((prompt | llm | StrOutputParser()).stream({"thing": "the sky"}))
    assert len([p for p in pieces if p]) > 3  # token by token, not one final string
    chunks = list((prompt | llm).stream({"thing": "grass"}))
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert whole.content == "".join(c.content for c in chunks) and whole.content
    assert whole.usage_metadata["output_tokens"] > 0 and whole.response_metadata["finish_reason"] in ("stop", "length")


def test_async_streamed_tool_call_is_complete_and_parses(engine_model):
    llm = ChatAgentForge(model=engine_model).bind_tools([multiply], tool_choice="any")

    async def main():
        whole = None
        async for chunk in llm.astream("What is 6 times 7?"):
            whole = chunk if whole is None else whole + chunk
        return whole, await llm.ainvoke("What is 3 times 4?")

    whole, reply = asyncio.run(main())
    [call] = whole.tool_calls
    assert call["name"] == "multiply" and set(call["args"]) == {"a", "b"} and all(isinstance(v, int) for v in call["args"].values())
    assert reply.tool_calls[0]["name"] == "multiply"


def test_structured_output_is_decoded_under_the_schema(engine_model):
    llm = ChatAgentForge(model=engine_model)
    order = llm.with_structured_output(Order).invoke("Order three boxes of green tea, express.")
    assert isinstance(order, Order) and 1 <= order.quantity <= 10
    schema = {"title": "city", "type": "object", "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["name", "population"]}
    city = llm.with_structured_output(schema).invoke("Paris has about two million people.")
    assert set(city) == {"name", "population"} and isinstance(city["population"], int)
    called = llm.with_structured_output(Order, method="function_calling").invoke("Order one mug.")
    assert isinstance(called, Order)


# --- embeddings, retrievers, loaders -------------------------------------------------------------


@pytest.fixture(scope="module")
def docs_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lc-docs")
    (folder / "install.md").write_text("# Installing Zorblax\n\nRun `pip install zorblax`, then `zorblax init`.\n")
    (folder / "pricing.md").write_text("# Pricing\n\nThe Zorblax team plan costs 12 euros per seat per month.\n")
    (folder / "platforms.md").write_text("# Platforms\n\nZorblax runs on Linux and macOS; Windows is planned.\n")
    return folder


def test_embeddings_power_a_langchain_vector_store(embedder, docs_folder):
    embeddings = AgentForgeEmbeddings(embedder=embedder)
    assert embeddings.embed_query("tea") == pytest.approx(embedder.embed(["tea"])[0].tolist(), abs=1e-6)
    store = InMemoryVectorStore(embeddings)
    texts = [p.read_text() for p in sorted(docs_folder.glob("*.md"))]
    store.add_texts(texts, metadatas=[{"source": p.name} for p in sorted(docs_folder.glob("*.md"))])
    [best] = store.similarity_search("How much does a seat cost?", k=1)
    assert best.metadata["source"] == "pricing.md"
    with pytest.raises(ValueError):
        embeddings.embed_documents("not a list")

    ours = from_langchain_retriever(store.as_retriever(search_kwargs={"k": 2}))
    hits = ours.retrieve("Which operating systems are supported?")
    assert hits[0].source == "platforms.md" and hits[0].score >= hits[1].score


def test_knowledge_base_as_a_langchain_retriever_in_a_chain(tmp_path, embedder, docs_folder):
    kb = KnowledgeBase("lc-retriever", path=tmp_path / "kb", embedder=embedder)
    kb.ingest(docs_folder)
    retriever = AgentForgeRetriever(retriever=kb.as_retriever(k=2))
    [first, _] = retriever.invoke("team plan price per seat")
    assert first.metadata["source"].endswith("pricing.md") and "12 euros" in first.page_content
    chain = retriever | (lambda docs: docs[0].metadata["source"])
    assert chain.invoke("install command").endswith("install.md")
    with pytest.raises(ValueError):
        AgentForgeRetriever(retriever="not a retriever")


def test_langchain_loader_output_is_ingested_and_cited(tmp_path, embedder, docs_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "langchain-community is being sunset": its loaders are still what users run
        from langchain_community.document_loaders import DirectoryLoader, TextLoader

    loaded = DirectoryLoader(str(docs_folder), glob="*.md", loader_cls=TextLoader).load()
    kb = KnowledgeBase("lc-loaded", path=tmp_path / "kb", embedder=embedder)
    stats = kb.add_documents(from_langchain_documents(loaded))
    assert stats.documents == 3 and stats.added == stats.chunks == 3 and not stats.errors
    [hit] = kb.search("Which operating systems are supported?", k=1)
    assert hit.source == str(docs_folder / "platforms.md") and hit.metadata["section"] == "Platforms"
    again = kb.add_documents(from_langchain_documents(loaded))
    assert again.skipped == 3 and again.embedded == 0  # the same documents again: nothing re-embedded
    assert kb.delete(str(docs_folder / "platforms.md")) == 1 and kb.count() == 2

    from langchain_core.documents import Document as LCDocument

    with pytest.raises(ValueError, match="source"):
        from_langchain_documents([LCDocument(page_content="no source")])
    with pytest.raises(ValueError, match="add_documents takes"):
        kb.add_documents([{"text": "a dict"}])


def test_langchain_tool_runs_in_our_react_agent(engine_model):
    from agentforge.agents import create_react_agent

    agent = create_react_agent(engine_model, [from_langchain_tool(multiply)])
    messages = agent.invoke({"messages": [{"role": "user", "content": "Use the tool: what is 6 times 7?"}]})["messages"]
    [call] = messages[1].tool_calls
    args = json.loads(call.function.arguments)
    assert call.function.name == "multiply" and messages[2].role == "tool"
    assert messages[2].content == str(args["a"] * args["b"])
