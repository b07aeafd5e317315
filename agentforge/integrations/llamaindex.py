"""LlamaIndex on AgentForge and back (`pip install agentforge[llamaindex]`).

- `AgentForgeLLM`: a LlamaIndex function-calling `LLM` over any AgentForge chat model (the
  embedded engine by default), for query engines, chat engines and `FunctionAgent`.
- `AgentForgeEmbedding`: our embedder as a LlamaIndex `BaseEmbedding`.
- `AgentForgeRetriever` / `from_llamaindex_retriever`: retrievers both ways.
- `chroma_vector_store`: a knowledge base's Chroma collection as a `ChromaVectorStore`.
- `from_llamaindex_documents`: a LlamaIndex reader's output for `KnowledgeBase.add_documents`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Generator, Sequence
from pathlib import Path
from typing import Any

try:
    from llama_index.core.base.llms.types import (
        ChatMessage as LIMessage,
    )
    from llama_index.core.base.llms.types import (
        ChatResponse,
        CompletionResponse,
        LLMMetadata,
        MessageRole,
    )
    from llama_index.core.bridge.pydantic import ConfigDict, Field, field_validator
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
    from llama_index.core.llms.function_calling import FunctionCallingLLM
    from llama_index.core.llms.llm import ToolSelection
    from llama_index.core.llms.utils import parse_partial_json
    from llama_index.core.retrievers import BaseRetriever as LIRetriever
    from llama_index.core.schema import BaseNode, NodeWithScore, QueryBundle, TextNode
    from llama_index.core.schema import Document as LIDocument
except ImportError as exc:  # the extra is not installed
    raise ImportError(f"agentforge.integrations.llamaindex needs {exc.name}: pip install 'agentforge[llamaindex]'") from exc

from agentforge.agents import ChatModel, as_chat_model
from agentforge.engine.protocol import ChatMessage
from agentforge.rag import Document, Hit, KnowledgeBase, LocalEmbedder, Retriever

from ._spec_tool import spec_tool

__all__ = ["AgentForgeEmbedding", "AgentForgeLLM", "AgentForgeRetriever", "chroma_vector_store",
           "from_llamaindex_documents", "from_llamaindex_retriever"]


class AgentForgeLLM(FunctionCallingLLM):
    """An AgentForge chat model as a LlamaIndex LLM with native function calling.

    >>> llm = AgentForgeLLM()                                  # the embedded SmolLM2
    >>> RetrieverQueryEngine.from_args(AgentForgeRetriever(kb), llm=llm).query("How do I install it?")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)
    model: Any = Field(default="smollm2-135m", validate_default=True,
                       description="an AgentForge ChatModel or an engine model name")
    context_window: int | None = Field(default=None, description="tokens; the engine's window when None")

    @field_validator("model")
    @classmethod
    def _chat_model(cls, value: Any) -> ChatModel:
        return as_chat_model(value)

    @classmethod
    def class_name(cls) -> str:
        return "AgentForgeLLM"

    @property
    def metadata(self) -> LLMMetadata:
        window = self.context_window
        if window is None:
            engine = getattr(getattr(self.model, "llm", None), "engine", None)
            window = engine.max_model_len if engine is not None else 3900
        sampling = getattr(self.model, "sampling", None)
        return LLMMetadata(context_window=window, num_output=getattr(sampling, "max_tokens", None) or 256,
                           is_chat_model=True, is_function_calling_model=True, model_name=repr(self.model))

    # --- chat -------------------------------------------------------------------------------

    @llm_chat_callback()
    def chat(self, messages: Sequence[LIMessage], **kwargs: Any) -> ChatResponse:
        return _response(self._bound(kwargs).invoke(_to_ours(messages)))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[LIMessage], **kwargs: Any) -> ChatResponse:
        return _response(await self._bound(kwargs).ainvoke(_to_ours(messages)))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[LIMessage], **kwargs: Any) -> Generator[ChatResponse, None, None]:
        model, ours = self._bound(kwargs), _to_ours(messages)

        def gen() -> Generator[ChatResponse, None, None]:
            streamed = _Stream()
            for chunk in model.stream(ours):
                yield streamed.add(chunk)

        return gen()

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[LIMessage], **kwargs: Any) -> AsyncGenerator[ChatResponse, None]:
        model, ours = self._bound(kwargs), _to_ours(messages)

        async def gen() -> AsyncGenerator[ChatResponse, None]:
            streamed = _Stream()
            async for chunk in model.astream(ours):
                yield streamed.add(chunk)

        return gen()

    # --- completion: one user turn ----------------------------------------------------------

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return _completion(self.chat([LIMessage(role=MessageRole.USER, content=prompt)], **kwargs))

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return _completion(await self.achat([LIMessage(role=MessageRole.USER, content=prompt)], **kwargs))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Generator[CompletionResponse, None, None]:
        responses = self.stream_chat([LIMessage(role=MessageRole.USER, content=prompt)], **kwargs)
        return (_completion(r) for r in responses)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> AsyncGenerator[CompletionResponse, None]:
        responses = await self.astream_chat([LIMessage(role=MessageRole.USER, content=prompt)], **kwargs)

        async def gen() -> AsyncGenerator[CompletionResponse, None]:
            async for r in responses:
                yield _completion(r)

        return gen()

    # --- function calling -------------------------------------------------------------------

    def _prepare_chat_with_tools(self, tools: Sequence[Any], user_msg: str | LIMessage | None = None,
                                 chat_history: list[LIMessage] | None = None, verbose: bool = False,
                                 allow_parallel_tool_calls: bool = False, tool_required: bool = False,
                                 **kwargs: Any) -> dict[str, Any]:
        messages = list(chat_history or [])
        if user_msg is not None:
            messages.append(LIMessage(role=MessageRole.USER, content=user_msg) if isinstance(user_msg, str) else user_msg)
        specs = [t.metadata.to_openai_tool() for t in tools]
        return {"messages": messages, "tools": specs or None, "tool_choice": "required" if tool_required else "auto",
                "parallel_tool_calls": allow_parallel_tool_calls, **kwargs}

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> list[ToolSelection]:
        calls = response.message.additional_kwargs.get("tool_calls") or []
        if not calls and error_on_no_tool_call:
            raise ValueError(f"expected at least one tool call, got: {response.message.content!r:.200}")
        return [ToolSelection(tool_id=c["id"], tool_name=c["function"]["name"], tool_kwargs=_arguments(c["function"]["arguments"]))
                for c in calls]

    def _bound(self, options: dict) -> ChatModel:
        unknown = set(options) - {"tools", "tool_choice", "parallel_tool_calls"}
        if unknown:
            raise ValueError(f"AgentForgeLLM does not take {', '.join(sorted(unknown))}")
        if not options.get("tools"):
            return self.model
        tools = [spec_tool(spec, "LlamaIndex") for spec in options["tools"]]
        return self.model.bind_tools(tools, tool_choice=options.get("tool_choice"),
                                     parallel_tool_calls=options.get("parallel_tool_calls", True))


def _arguments(text: str) -> dict:
    """A call's arguments; while a call is still streaming, what its partial JSON holds so far
    (agents look at every streamed response)."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        try:
            value = parse_partial_json(text)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _to_ours(messages: Sequence[LIMessage]) -> list[ChatMessage]:
    """LlamaIndex messages as ours; tool calls and results in `additional_kwargs`, OpenAI-style."""
    out = []
    for m in messages:
        role = {"model": "assistant", "chatbot": "assistant", "function": "tool"}.get(m.role.value, m.role.value)
        extra = m.additional_kwargs
        out.append(ChatMessage(role=role, content=m.content or "", tool_calls=extra.get("tool_calls") or None,
                               tool_call_id=extra.get("tool_call_id"), name=extra.get("name")))
    return out


def _message(reply: ChatMessage, content: str | None = None, calls: list[dict] | None = None) -> LIMessage:
    if calls is None:
        calls = [c.model_dump() for c in reply.tool_calls or ()]
    extra = {"tool_calls": calls} if calls else {}
    return LIMessage(role=MessageRole.ASSISTANT, content=reply.content if content is None else content,
                     additional_kwargs=extra)


def _response(reply: ChatMessage) -> ChatResponse:
    usage = getattr(reply, "usage", None)
    return ChatResponse(message=_message(reply), raw={"usage": usage, "finish_reason": getattr(reply, "finish_reason", None)},
                        additional_kwargs=dict(usage or {}))


def _completion(response: ChatResponse) -> CompletionResponse:
    return CompletionResponse(text=response.message.content or "", delta=response.delta, raw=response.raw,
                              additional_kwargs=response.additional_kwargs)


class _Stream:
    """Streamed chunks as LlamaIndex chat responses: the text and tool calls so far, plus the delta."""

    def __init__(self) -> None:
        self.text, self.calls = "", {}

    def add(self, chunk) -> ChatResponse:
        if chunk.message is not None:
            return _response(chunk.message)
        self.text += chunk.content
        for d in chunk.tool_call_deltas:
            call = self.calls.setdefault(d.index, {"id": d.id, "type": "function", "function": {"name": d.name, "arguments": ""}})
            call["function"]["arguments"] += d.arguments
        message = _message(ChatMessage(role="assistant"), self.text, [self.calls[i] for i in sorted(self.calls)])
        return ChatResponse(message=message, delta=chunk.content)


# --- embeddings, retrievers, vector stores ------------------------------------------------------


class AgentForgeEmbedding(BaseEmbedding):
    """An AgentForge embedder (all-MiniLM-L6-v2, shipped, by default) as a LlamaIndex embedding."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    embedder: Any = Field(default_factory=LocalEmbedder)
    model_name: str = "agentforge"

    @classmethod
    def class_name(cls) -> str:
        return "AgentForgeEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embedder.embed([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embedder.embed([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(texts).tolist()


class AgentForgeRetriever(LIRetriever):
    """A knowledge base or any AgentForge `Retriever` as a LlamaIndex retriever: hits become text
    nodes with the hit's score and metadata, plus `file_path` / `file_name` as LlamaIndex readers set them."""

    def __init__(self, retriever: KnowledgeBase | Retriever, **kwargs: Any) -> None:
        if isinstance(retriever, KnowledgeBase):
            retriever = retriever.as_retriever()
        if not isinstance(retriever, Retriever):
            raise TypeError("retriever must be a KnowledgeBase or have .retrieve(query) -> list[Hit]")
        self.retriever = retriever
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.retriever.retrieve(query_bundle.query_str)
        return [NodeWithScore(node=TextNode(id_=hit.id, text=hit.text, metadata=_node_metadata(hit)), score=hit.score)
                for hit in hits]


def _node_metadata(hit: Hit) -> dict:
    return {**hit.metadata, "source": hit.source, "file_path": hit.source, "file_name": Path(hit.source).name}


class _LlamaIndexRetriever:
    """A LlamaIndex retriever behind our `Retriever` protocol."""

    def __init__(self, retriever: LIRetriever) -> None:
        self.retriever = retriever

    def retrieve(self, query: str) -> list[Hit]:
        return [_hit(n.node, n.score, rank) for rank, n in enumerate(self.retriever.retrieve(query))]


def from_llamaindex_retriever(retriever: LIRetriever) -> Retriever:
    """A LlamaIndex retriever as an AgentForge `Retriever`; a node's source is its `file_path`
    (else `source`) metadata, its score the node's score, else 1 / (rank + 1)."""
    if not isinstance(retriever, LIRetriever):
        raise TypeError(f"expected a LlamaIndex BaseRetriever, got {type(retriever).__name__}")
    return _LlamaIndexRetriever(retriever)


def _hit(node: BaseNode, score: float | None, rank: int) -> Hit:
    metadata = dict(node.metadata)
    source = str(metadata.get("file_path") or metadata.get("source") or "")
    return Hit(node.node_id, node.get_content(), source, float(score) if score is not None else 1 / (rank + 1), metadata)


def chroma_vector_store(kb: KnowledgeBase):
    """The knowledge base's Chroma collection as a LlamaIndex `ChromaVectorStore` (query it with
    `AgentForgeEmbedding(kb.embedder.embedder)` so the query vectors match the stored ones)."""
    from llama_index.vector_stores.chroma import ChromaVectorStore

    if not isinstance(kb, KnowledgeBase):
        raise TypeError(f"expected a KnowledgeBase, got {type(kb).__name__}")
    return ChromaVectorStore(chroma_collection=kb.collection)


def from_llamaindex_documents(documents: Sequence[LIDocument]) -> list[Document]:
    """LlamaIndex readers' documents as ours, for `KnowledgeBase.add_documents`; the source is the
    `file_path` metadata that `SimpleDirectoryReader` sets (else `source`)."""
    out = []
    for doc in documents:
        if not isinstance(doc, BaseNode):
            raise TypeError(f"expected LlamaIndex documents, got {type(doc).__name__}")
        source = doc.metadata.get("file_path") or doc.metadata.get("source")
        if not source:
            raise ValueError(f"a document needs metadata['file_path'] or ['source'] to be cited: {doc.get_content()[:80]!r}")
        out.append(Document(doc.get_content(), str(source), dict(doc.metadata),
                            markdown=str(source).lower().endswith((".md", ".markdown"))))
    return out
