"""MCP tools that ask the client while they run (elicitation, sampling, roots), in both protocol
eras: a mid-call request on 2025-11-25, an InputRequiredResult and a retry on 2026-07-28. Plus
rich tool results, binary and templated resources, prompts with content, completions, logging
and tool-list changes — each through our server and our client (or the SDK's)."""

from __future__ import annotations

import asyncio
import base64

import mcp.types as types
import pytest
from mcp import Client
from mcp.shared.subscriptions import ToolsListChanged

from agentforge.tools.mcp_client import MCPClient
from agentforge.tools.mcp_server import (
    Elicit,
    ListRoots,
    MCPToolServer,
    Prompt,
    Resource,
    ResourceTemplate,
    Sample,
    ask,
    log,
)

MODES = ["legacy", "2026-07-28"]
NAME_FORM = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
runs: list[str] = []  # the tools below note each run, so tests can count re-runs


async def greet() -> str:
    """Ask the user's name, then greet them."""
    runs.append("greet")
    answer = await Elicit("What is your name?", NAME_FORM)
    if answer.action != "accept":
        return "Nobody to greet."
    return f"Hello, {answer.content['name']}!"


async def interview() -> str:
    """Ask two questions, one after the other, then one to the LLM and one for the roots at once."""
    runs.append("interview")
    name = (await Elicit("Name?", NAME_FORM)).content["name"]
    color = (await Elicit("Color?", {"type": "object", "properties": {"color": {"type": "string"}}})).content["color"]
    answers = await ask(poem=Sample(f"A line about {name} and {color}", max_tokens=20), where=ListRoots())
    roots = ",".join(str(r.uri) for r in answers["where"].roots)
    return f"{name}/{color}/{answers['poem'].content.text}/{roots}"


async def haiku(topic: str) -> str:
    """Ask the client's LLM for a haiku."""
    return (await Sample(f"A haiku about {topic}", max_tokens=40)).content.text


async def noisy() -> str:
    """Log at two levels."""
    log("debug", "details")
    log("warning", "careful")
    return "ok"


def picture() -> list:
    """Return a caption and an image."""
    return [types.TextContent(type="text", text="a pixel"),
            types.ImageContent(type="image", data=base64.b64encode(PNG).decode(), mime_type="image/png")]


def asking_server() -> MCPToolServer:
    return MCPToolServer(
        "asking", [greet, interview, haiku, noisy, picture],
        resources=[Resource("img://pixel", "pixel", lambda: PNG, mime_type="image/png"),
                   ResourceTemplate("notes://{folder}/{name}", "note", lambda folder, name: f"{folder}:{name}",
                                    complete=lambda var, prefix: [v for v in ("inbox", "ideas", "work")
                                                                  if v.startswith(prefix)])],
        prompts=[Prompt("review", lambda language: [f"Review this {language} code.",
                                                     {"role": "assistant", "content": "Paste it here."}],
                        "Code review", [("language", "The language", True)],
                        complete=lambda arg, prefix: [v for v in ("python", "perl", "rust") if v.startswith(prefix)])])


def answering_client(url: str, mode: str, *, sampling: bool = True, **kwargs) -> MCPClient:
    asked = kwargs.pop("asked", [])

    def elicitation(params):
        asked.append(params.message)
        key = next(iter(params.requested_schema["properties"]))
        return types.ElicitResult(action="accept", content={key: {"name": "Ada", "color": "teal"}[key]})

    def llm(params):
        return types.CreateMessageResult(role="assistant", model="test",
                                         content=types.TextContent(type="text", text="roses"))

    return MCPClient({"s": url}, elicitation=elicitation, sampling=llm if sampling else None,
                     roots=["file:///work"], mode=mode, **kwargs)


@pytest.mark.parametrize("mode", MODES)
def test_a_tool_asks_the_user_and_the_llm_in_both_eras(serve_http, mode):
    http = serve_http(asking_server())
    asked = []
    runs.clear()
    with answering_client(http.url, mode, asked=asked) as mcp:
        assert mcp.call_tool("s", "greet").content == "Hello, Ada!"
        assert mcp.call_tool("s", "interview").content == "Ada/teal/roses/file:///work"
    assert asked == ["What is your name?", "Name?", "Color?"]  # each question asked once, whatever the era
    # 2025-11-25 asks mid-call; 2026-07-28 re-runs the tool once per round of questions
    assert runs == (["greet", "interview"] if mode == "legacy" else ["greet"] * 2 + ["interview"] * 4)


@pytest.mark.parametrize("mode", MODES)
def test_a_declined_question_and_a_client_that_cannot_sample(serve_http, mode):
    http = serve_http(asking_server())

    def decline(params):
        return types.ElicitResult(action="decline")

    with MCPClient({"s": http.url}, elicitation=decline, mode=mode) as mcp:
        assert mcp.call_tool("s", "greet").content == "Nobody to greet."
        result = mcp.call_tool("s", "haiku", {"topic": "rain"})  # this client declared no sampling
    assert result.is_error and "'sampling' capability" in result.content


def test_the_2026_wire_round_trip_and_a_tampered_state():
    async def never_called(ctx, params):  # declares elicitation; the test answers on the wire itself
        raise AssertionError("the SDK client should not be asked")

    async def run():
        async with Client(asking_server().server, mode="2026-07-28", elicitation_callback=never_called) as client:
            session = client.session
            first = await session.send_request(types.CallToolRequest(params=types.CallToolRequestParams(
                name="interview", arguments={})), types.InputRequiredResult)
            key = next(iter(first.input_requests))
            answer = types.ElicitResult(action="accept", content={"name": "Ada"})
            second = await session.send_request(types.CallToolRequest(params=types.CallToolRequestParams(
                name="interview", arguments={}, input_responses={key: answer}, request_state=first.request_state)),
                types.InputRequiredResult)
            tampered = first.request_state[:-4] + ("AAAA" if not first.request_state.endswith("AAAA") else "BBBB")
            with pytest.raises(Exception, match="(?i)state"):
                await session.send_request(types.CallToolRequest(params=types.CallToolRequestParams(
                    name="interview", arguments={}, input_responses={key: answer}, request_state=tampered)),
                    types.InputRequiredResult)
            return first, second

    first, second = asyncio.run(run())
    assert first.input_requests[next(iter(first.input_requests))].params.message == "Name?"
    assert [r.params.message for r in second.input_requests.values()] == ["Color?"]
    assert second.request_state and second.request_state != first.request_state


@pytest.mark.parametrize("mode", MODES)
def test_rich_results_binary_and_templated_resources_prompts_and_completions(serve_http, mode):
    http = serve_http(asking_server())

    async def run():
        async with Client(http.url, mode=mode) as client:
            picture = await client.call_tool("picture", {})
            pixel = await client.read_resource("img://pixel")
            note = await client.read_resource("notes://inbox/todo")
            missing = None
            try:
                await client.read_resource("notes://inbox")
            except Exception as exc:
                missing = exc
            templates = (await client.list_resource_templates()).resource_templates
            prompt = await client.get_prompt("review", {"language": "python"})
            words = await client.complete(types.PromptReference(type="ref/prompt", name="review"),
                                          {"name": "language", "value": "p"})
            folders = await client.complete(
                types.ResourceTemplateReference(type="ref/resource", uri="notes://{folder}/{name}"),
                {"name": "folder", "value": "i"})
            return picture, pixel, note, missing, templates, prompt, words, folders

    picture, pixel, note, missing, templates, prompt, words, folders = asyncio.run(run())
    assert [c.type for c in picture.content] == ["text", "image"] and picture.content[1].mime_type == "image/png"
    assert base64.b64decode(pixel.contents[0].blob) == PNG and pixel.contents[0].mime_type == "image/png"
    assert note.contents[0].text == "inbox:todo"
    assert missing is not None and "not found" in str(missing).lower()
    assert [t.uri_template for t in templates] == ["notes://{folder}/{name}"]
    assert [(m.role, m.content.text) for m in prompt.messages] == [("user", "Review this python code."),
                                                                    ("assistant", "Paste it here.")]
    assert words.completion.values == ["python", "perl"] and folders.completion.values == ["inbox", "ideas"]


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")  # logging: 2025-11-25, kept
def test_logs_honour_the_level_the_client_set():
    async def run():
        received = []

        async def on_log(params):
            received.append((params.level, params.data))

        async with Client(asking_server().server, mode="legacy", logging_callback=on_log) as client:
            await client.call_tool("noisy", {})
            await client.session.set_logging_level("warning")
            await client.call_tool("noisy", {})
        return received

    assert asyncio.run(run()) == [("debug", "details"), ("warning", "careful"), ("warning", "careful")]


@pytest.mark.parametrize("mode", MODES)
def test_adding_and_removing_tools_tells_the_clients(mode):
    server = asking_server()

    def extra() -> str:
        """Here for a while."""
        return "extra"

    async def changes_announced(client, change) -> None:
        if mode == "legacy":  # 2025-11-25: a notification to every client that listed the tools
            heard = asyncio.Event()
            client.session._message_handler = lambda message: _set_if(heard, message)
            await change()
            await asyncio.wait_for(heard.wait(), 5)
        else:  # 2026-07-28: an event on the client's subscriptions/listen stream
            async with client.listen(tools_list_changed=True) as events:
                await change()
                assert isinstance(await asyncio.wait_for(events.__anext__(), 5), ToolsListChanged)

    async def run():
        async with Client(server.server, mode=mode) as client:
            before = {t.name for t in (await client.list_tools()).tools}
            await changes_announced(client, lambda: server.add_tool(extra))
            after = {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}
            called = await client.call_tool("extra", {})
            await changes_announced(client, lambda: server.remove_tool("extra"))
            return before, after, called, {t.name for t in (await client.list_tools(cache_mode="refresh")).tools}

    before, after, called, final = asyncio.run(run())
    assert after - before == {"extra"} and called.content[0].text == "extra" and final == before


async def _set_if(event: asyncio.Event, message) -> None:
    if getattr(message, "method", None) == "notifications/tools/list_changed":
        event.set()
