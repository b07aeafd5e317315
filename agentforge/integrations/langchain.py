"""LangChain on AgentForge and back (`pip install agentforge[langchain]`).

- `ChatAgentForge`: a LangChain `BaseChatModel` over any AgentForge chat model (the embedded engine
  by default): sync, async, token streaming, `bind_tools` with grammar-constrained calls,
  `with_structured_output` decoded under the schema, usage metadata.
- `AgentForgeEmbeddings` and `AgentForgeRetriever`: our embedder and knowledge bases as LangChain's
  `Embeddings` and `BaseRetriever`; `from_langchain_retriever` the other way.
- `to_langchain_tool` / `from_langchain_tool`: tools both ways, with the same JSON schema.
- `from_langchain_documents`: a LangChain loader's output for `KnowledgeBase.add_documents`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

try:
    from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
    from langchain_core.documents import Document as LCDocument
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.runnables import Runnable, RunnableLambda
    from langchain_core.tools import BaseTool, StructuredTool, ToolException
    from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
except ImportError as exc:  # the extra is not installed
    raise ImportError(f"agentforge.integrations.langchain needs {exc.name}: pip install 'agentforge[langchain]'") from exc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agentforge.agents import ChatChunk, ChatModel, as_chat_model
from agentforge.engine.protocol import ChatMessage
from agentforge.rag import Document, Hit, KnowledgeBase, LocalEmbedder, Retriever
from agentforge.tools import Tool

from ._messages import from_langchain_messages, to_langchain_messages
from ._spec_tool import spec_tool

__all__ = ["AgentForgeEmbeddings", "AgentForgeRetriever", "ChatAgentForge", "from_langchain_documents",
           "from_langchain_messages", "from_langchain_retriever", "from_langchain_tool", "to_langchain_messages",
           "to_langchain_tool"]

_CALL_OPTIONS = {"tools", "tool_choice", "parallel_tool_calls", "response_format"}


class ChatAgentForge(BaseChatModel):
    """An AgentForge chat model as a LangChain chat model.

    >>> llm = ChatAgentForge()                        # the embedded SmolLM2
    >>> llm.bind_tools([get_weather]).invoke("Weather in Paris?").tool_calls
    >>> for chunk in (prompt | llm).stream({"topic": "bees"}): print(chunk.content, end="")

    `model` is an AgentForge `ChatModel` (e.g. `EngineChatModel(..., temperature=0.7)` or
    `OpenAIChatModel`) or a model name for the embedded engine.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    model: Any = Field(default="smollm2-135m", validate_default=True, description="an AgentForge ChatModel or an engine model name")

    @field_validator("model")
    @classmethod
    def _chat_model(cls, value: Any) -> ChatModel:
        return as_chat_model(value)

    @property
    def _llm_type(self) -> str:
        return "agentforge"

    @property
    def _identifying_params(self) -> dict:
        return {"model": repr(self.model)}

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | dict | bool | None = None,
                   **kwargs: Any) -> Runnable:
        """This model with `tools` (LangChain tools, AgentForge tools, functions, pydantic classes or
        OpenAI specs) offered on every call; the engine constrains each call to its schema.
        `tool_choice`: "auto", "none", "any"/"required"/True (must call), or a tool's name."""
        specs = [t.spec if isinstance(t, Tool) else convert_to_openai_tool(t) for t in tools]
        names = {s["function"]["name"] for s in specs}
        if tool_choice in ("any", True):
            tool_choice = "required"
        elif isinstance(tool_choice, str) and tool_choice not in ("auto", "none", "required"):
            if tool_choice not in names:
                raise ValueError(f"tool_choice {tool_choice!r} names none of the bound tools ({', '.join(sorted(names))})")
            tool_choice = {"type": "function", "function": {"name": tool_choice}}
        return self.bind(tools=specs, tool_choice=tool_choice, **kwargs)

    def with_structured_output(self, schema: dict | type | None = None, *, method: str = "json_schema",
                               include_raw: bool = False, **kwargs: Any) -> Runnable:
        """A runnable returning `schema`'s instance (a pydantic class) or a dict (a JSON schema, a
        TypedDict or an OpenAI function spec). `method="json_schema"` decodes the reply under the
        schema; "json_mode" under any JSON object (then parsed with `schema` if given);
        "function_calling" forces a call of a tool with that schema."""
        if kwargs:
            raise ValueError(f"unsupported arguments: {', '.join(sorted(kwargs))}")
        if method not in ("json_schema", "json_mode", "function_calling"):
            raise ValueError(f"method must be 'json_schema', 'json_mode' or 'function_calling', got {method!r}")
        if schema is None and method != "json_mode":
            raise ValueError(f"method {method!r} needs a schema")
        if method == "function_calling":
            return super().with_structured_output(schema, include_raw=include_raw)
        pydantic_class = isinstance(schema, type) and issubclass(schema, BaseModel)

        def parse(message: AIMessage) -> Any:
            text = message.content if isinstance(message.content, str) else ""
            return schema.model_validate_json(text) if pydantic_class else json.loads(text)

        def parse_with_raw(message: AIMessage) -> dict:
            try:
                return {"raw": message, "parsed": parse(message), "parsing_error": None}
            except ValueError as exc:
                return {"raw": message, "parsed": None, "parsing_error": exc}

        if method == "json_mode":
            response_format = {"type": "object"}
        else:
            response_format = schema if pydantic_class else convert_to_json_schema(schema)
        return self.bind(response_format=response_format) | RunnableLambda(parse_with_raw if include_raw else parse)

    # --- calls ------------------------------------------------------------------------------

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        reply = self._bound(stop, kwargs).invoke(from_langchain_messages(messages))
        return _result(reply)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        reply = await self._bound(stop, kwargs).ainvoke(from_langchain_messages(messages))
        return _result(reply)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for chunk in self._bound(stop, kwargs).stream(from_langchain_messages(messages)):
            out = _chunk(chunk)
            if run_manager and out.text:
                run_manager.on_llm_new_token(out.text, chunk=out)
            yield out

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk in self._bound(stop, kwargs).astream(from_langchain_messages(messages)):
            out = _chunk(chunk)
            if run_manager and out.text:
                await run_manager.on_llm_new_token(out.text, chunk=out)
            yield out

    def _bound(self, stop: list[str] | None, options: dict) -> ChatModel:
        """Our model with this call's tools, structured output and stop strings."""
        unknown = set(options) - _CALL_OPTIONS
        if unknown:
            raise ValueError(f"ChatAgentForge does not take {', '.join(sorted(unknown))}")
        model: ChatModel = self.model
        if stop:
            if not hasattr(model, "sampling"):
                raise ValueError(f"{type(model).__name__} takes no stop strings per call")
            model = copy.copy(model)
            model.sampling = dataclasses.replace(model.sampling, stop=list(stop))
        if options.get("tools"):
            tools = [spec_tool(spec, "LangChain") for spec in options["tools"]]
            model = model.bind_tools(tools, tool_choice=options.get("tool_choice"),
                                     parallel_tool_calls=options.get("parallel_tool_calls", True))
        if options.get("response_format") is not None:
            model = copy.copy(model)
            model.tools, model.tool_choice, model.response_format = (), None, options["response_format"]
        return model


def _usage(message: ChatMessage) -> dict | None:
    usage = getattr(message, "usage", None)
    if not usage:
        return None
    return {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
            "total_tokens": usage["total_tokens"]}


def _metadata(message: ChatMessage) -> dict:
    return {"finish_reason": getattr(message, "finish_reason", None), "model_provider": "agentforge"}


def _result(reply: ChatMessage) -> ChatResult:
    [message] = to_langchain_messages([reply])
    message.usage_metadata = _usage(reply)
    message.response_metadata = _metadata(reply)
    return ChatResult(generations=[ChatGeneration(message=message)])


def _chunk(chunk: ChatChunk) -> ChatGenerationChunk:
    if chunk.message is not None:  # the end of the reply: usage and finish reason
        message = AIMessageChunk(content="", id=chunk.id, usage_metadata=_usage(chunk.message),
                                 response_metadata=_metadata(chunk.message), chunk_position="last")
    else:
        calls = [{"name": d.name, "args": d.arguments, "id": d.id, "index": d.index, "type": "tool_call_chunk"}
                 for d in chunk.tool_call_deltas]
        message = AIMessageChunk(content=chunk.content, id=chunk.id, tool_call_chunks=calls)
    return ChatGenerationChunk(message=message)


# --- embeddings and retrievers -----------------------------------------------------------------


class AgentForgeEmbeddings(BaseModel, Embeddings):
    """An AgentForge embedder (all-MiniLM-L6-v2, shipped, by default) as LangChain `Embeddings`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    embedder: Any = Field(default_factory=LocalEmbedder)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError("embed_documents takes a list of strings")
        return self.embedder.embed(texts).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        if not isinstance(text, str):
            raise ValueError("embed_query takes a string")
        return self.embedder.embed([text])[0].tolist()


class AgentForgeRetriever(BaseRetriever):
    """A knowledge base (searched with `k`, `mode`, ...) or any AgentForge `Retriever` as a
    LangChain retriever: each hit is a Document whose metadata has its `source`, `score` and `id`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    retriever: Any

    @field_validator("retriever")
    @classmethod
    def _our_retriever(cls, value: Any) -> Retriever:
        if isinstance(value, KnowledgeBase):
            return value.as_retriever()
        if not isinstance(value, Retriever):
            raise ValueError("retriever must be a KnowledgeBase or have .retrieve(query) -> list[Hit]")
        return value

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[LCDocument]:
        return [LCDocument(page_content=hit.text, id=hit.id,
                           metadata={**hit.metadata, "source": hit.source, "score": hit.score, "id": hit.id})
                for hit in self.retriever.retrieve(query)]


class _LangChainRetriever:
    """A LangChain retriever behind our `Retriever` protocol."""

    def __init__(self, retriever: BaseRetriever) -> None:
        self.retriever = retriever

    def retrieve(self, query: str) -> list[Hit]:
        return [_hit(doc, rank) for rank, doc in enumerate(self.retriever.invoke(query))]


def from_langchain_retriever(retriever: BaseRetriever) -> Retriever:
    """A LangChain retriever as an AgentForge `Retriever` (for `create_rag_agent`, hybrid fusion,
    rerankers). A document's `score` metadata is its score, else 1 / (rank + 1)."""
    if not isinstance(retriever, BaseRetriever):
        raise TypeError(f"expected a LangChain BaseRetriever, got {type(retriever).__name__}")
    return _LangChainRetriever(retriever)


def _hit(doc: LCDocument, rank: int) -> Hit:
    metadata = dict(doc.metadata)
    score = metadata.pop("score", None)
    source = str(metadata.pop("source", "") or "")
    chunk_id = str(doc.id or metadata.pop("id", None) or f"{source}#{rank}")
    return Hit(chunk_id, doc.page_content, source, float(score) if isinstance(score, (int, float)) else 1 / (rank + 1),
               metadata)


def from_langchain_documents(documents: Sequence[LCDocument]) -> list[Document]:
    """LangChain loaders' documents as ours, for `KnowledgeBase.add_documents`: the text, its
    `metadata["source"]` (required: it is what citations name) and the rest of the metadata."""
    out = []
    for doc in documents:
        if not isinstance(doc, LCDocument):
            raise TypeError(f"expected LangChain Documents, got {type(doc).__name__}")
        source = doc.metadata.get("source")
        if not source:
            raise ValueError(f"a document needs metadata['source'] to be cited: {doc.page_content[:80]!r}")
        out.append(Document(doc.page_content, str(source), dict(doc.metadata),
                            markdown=str(source).lower().endswith((".md", ".markdown"))))
    return out


# --- tools -----------------------------------------------------------------------------------


def to_langchain_tool(tool: Tool) -> StructuredTool:
    """An AgentForge tool (local or from an MCP server) as a LangChain tool with the same schema.
    A failed call comes back to the model as an error ToolMessage, as in our ToolNode."""
    if not isinstance(tool, Tool):
        raise TypeError(f"expected an agentforge Tool, got {type(tool).__name__}")

    def content(result) -> str:
        if result.is_error:
            raise ToolException(result.content)
        return result.content

    def run(**arguments: Any) -> str:
        return content(tool.invoke(arguments))

    async def arun(**arguments: Any) -> str:
        return content(await tool.ainvoke(arguments))

    return StructuredTool(name=tool.name, description=tool.description, args_schema=tool.parameters, func=run,
                          coroutine=arun, handle_tool_error=True)


def from_langchain_tool(tool: BaseTool) -> Tool:
    """A LangChain tool as an AgentForge `Tool` with the schema LangChain gives models for it."""
    if not isinstance(tool, BaseTool):
        raise TypeError(f"expected a LangChain BaseTool, got {type(tool).__name__}")
    function = convert_to_openai_tool(tool)["function"]

    async def call(**arguments: Any) -> Any:
        return await tool.ainvoke(arguments)

    return Tool(call, name=function["name"], description=function.get("description", ""),
                parameters=function.get("parameters") or {"type": "object", "properties": {}})
