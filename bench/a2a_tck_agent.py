"""The graph `agentforge a2a serve` runs under the A2A TCK (a2aproject/a2a-tck, 1.0 line).

The TCK picks the agent's behaviour with the messageId prefix of each test message (its
`scenarios/*.feature`); this graph plays those scenarios with ordinary graph features: answers
as assistant messages, artifacts and a direct Message through `get_stream_writer()`, input
through `interrupt()`. Run it (see docs/a2a.md, "Conformance"):

    PYTHONPATH=bench agentforge a2a serve a2a_tck_agent:graph --port 9999 --direct-replies --allow-private-webhooks
    python run_tck.py --sut-host http://127.0.0.1:9999 --transport jsonrpc,http_json --level must
"""

from __future__ import annotations

import asyncio
import os

from a2a.helpers import new_data_part, new_text_message, new_text_part
from a2a.types import Artifact, Part

from agentforge.graphs import END, START, MessagesState, StateGraph, get_stream_writer, interrupt

STREAMING_TIMEOUT = float(os.environ.get("TCK_STREAMING_TIMEOUT", "2.0"))


def _artifact(part: Part, name: str = "output") -> Artifact:
    return Artifact(artifact_id=name, name=name, parts=[part])


async def play(state: dict, config: dict) -> dict:
    message_id = config["configurable"]["a2a_message_id"] or ""
    write = get_stream_writer()
    say = {"messages": []}

    def answer(text: str) -> dict:
        return {"messages": [{"role": "assistant", "content": text}]}

    if message_id.startswith("tck-message-response"):
        write(new_text_message("Direct message response"))
        return say
    if message_id.startswith("tck-input-required"):
        return answer(f"Thanks for: {interrupt('Please provide more input')}")
    if message_id.startswith("tck-reject-task"):
        raise ValueError("rejected")
    if message_id.startswith("tck-artifact-text"):
        write(_artifact(new_text_part("Generated text content")))
        return say
    if message_id.startswith("tck-artifact-file-url"):
        write(_artifact(Part(url="https://example.com/output.txt", filename="output.txt", media_type="text/plain")))
        return say
    if message_id.startswith("tck-artifact-file"):
        write(_artifact(Part(raw=b"file content", filename="output.txt", media_type="text/plain")))
        return say
    if message_id.startswith("tck-artifact-data"):
        write(_artifact(new_data_part({"key": "value", "count": 42})))
        return say
    if message_id.startswith("tck-stream-artifact-chunked"):
        write(Artifact(artifact_id="chunked", name="chunked", parts=[new_text_part("chunk-1 ")]))
        write(Artifact(artifact_id="chunked-2", name="chunked", parts=[new_text_part("chunk-2")]))
        return say
    if message_id.startswith("tck-stream-artifact-file"):
        write(_artifact(Part(raw=b"file content", filename="output.txt", media_type="text/plain")))
        return say
    streamed = {"tck-stream-001": "Stream hello from TCK", "tck-stream-003": "Stream task lifecycle",
                "tck-stream-ordering-001": "Ordered output", "tck-stream-artifact-text": "Streamed text content"}
    for prefix, text in streamed.items():
        if message_id.startswith(prefix):
            write(_artifact(new_text_part(text)))
            return say
    if message_id.startswith("tck-stream-002"):
        return say
    if message_id.startswith("test-resubscribe-message-id"):
        await asyncio.sleep(2 * STREAMING_TIMEOUT)
        return say
    return answer("Hello from TCK")


builder = StateGraph(MessagesState)
builder.add_node("play", play)
builder.add_edge(START, "play")
builder.add_edge("play", END)
graph = builder.compile(name="agentforge-tck")
