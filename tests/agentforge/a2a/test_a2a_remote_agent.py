"""`RemoteAgent` against a plain `a2a-sdk` server (an executor written here, nothing of ours on the
server side): send, stream, follow-ups, cancel, as a graph node and as an agent's tool; and its
errors when the agent is down or answers garbage."""

from __future__ import annotations

import asyncio

import pytest
from _a2a_helpers import UvicornThread, free_port, one_node_graph, run
from a2a.helpers import get_message_text, new_task_from_user_message, new_text_part
from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes, create_rest_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, TaskState
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from agentforge.a2a import RemoteAgent, RemoteAgentError
from agentforge.agents import ScriptedChatModel, create_react_agent
from agentforge.graphs import Command


class WeatherExecutor(AgentExecutor):
    """Asks for a city when none is given, answers in two streamed artifact chunks, sleeps on "slow"."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def execute(self, context, event_queue):
        task = context.current_task
        if task is None:
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        text = get_message_text(context.message)
        await updater.start_work()
        if text == "slow":
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.cancelled.append(task.id)
                raise
        if task.status.state != TaskState.TASK_STATE_INPUT_REQUIRED and "in " not in text:
            await updater.requires_input(updater.new_agent_message([new_text_part("Which city?")]))
            return
        city = text.split("in ")[-1]
        await updater.add_artifact([new_text_part(f"Weather in {city}: ")], artifact_id="w", name="forecast")
        await updater.add_artifact([new_text_part("sunny")], artifact_id="w", append=True, last_chunk=True)
        await updater.complete(updater.new_agent_message([new_text_part(f"Weather in {city}: sunny")]))

    async def cancel(self, context, event_queue):
        task = context.current_task
        await TaskUpdater(event_queue, task.id, task.context_id).cancel()


@pytest.fixture
def weather(serve_asgi):
    """A plain a2a-sdk server on 127.0.0.1; returns (url, executor)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    card = AgentCard(name="weather", description="Tells the weather.", version="1.0",
                     supported_interfaces=[AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0"),
                                           AgentInterface(url=url + "/rest", protocol_binding="HTTP+JSON",
                                                          protocol_version="1.0")],
                     capabilities=AgentCapabilities(streaming=True), default_input_modes=["text/plain"],
                     default_output_modes=["text/plain"],
                     skills=[AgentSkill(id="forecast", name="forecast", description="Weather by city", tags=["weather"])])
    executor = WeatherExecutor()
    handler = DefaultRequestHandler(agent_executor=executor, task_store=InMemoryTaskStore(), agent_card=card)
    app = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/"),
                            *create_rest_routes(handler, path_prefix="/rest")])
    server = UvicornThread(app, port)
    yield url, executor
    server.stop()


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
def test_send_stream_and_follow_up(weather, binding):
    url, _ = weather

    async def main():
        remote = RemoteAgent(url, binding=binding)
        assert [s.id for s in await remote.skills()] == ["forecast"] and remote.name == "weather"
        done = await remote.send("weather in Paris")
        assert (done.state, done.text, done.artifacts) == ("completed", "Weather in Paris: sunny", ["Weather in Paris: sunny"])
        events = [e async for e in remote.stream("weather in Oslo")]
        assert [e.text for e in events if e.kind == "text"] == ["Weather in Oslo: ", "sunny"]
        assert events[-1].kind == "done" and events[-1].reply.state == "completed"
        asked = await remote.send("weather please")
        assert (asked.state, asked.text) == ("input-required", "Which city?")
        assert await remote.waiting_task(asked.context_id) == asked.task_id
        answered = await remote.send("in Rome", task_id=asked.task_id, context_id=asked.context_id)
        assert (answered.state, answered.text, answered.task_id) == ("completed", "Weather in Rome: sunny", asked.task_id)
        assert (await remote.get(asked.task_id)).state == "completed"
        await remote.aclose()

    run(main())


def test_cancel_reaches_the_remote_executor(weather):
    url, executor = weather

    async def main():
        remote = RemoteAgent(url)
        stream = remote.stream("slow")
        first = await anext(stream)  # the task is working
        assert first.state == "working"
        task_id = first.task_id
        reply = await remote.cancel(task_id)
        assert reply.state == "canceled"
        await stream.aclose()
        await asyncio.sleep(0.1)
        assert executor.cancelled == [task_id]
        await remote.aclose()

    run(main())


def test_as_node_streams_and_turns_input_required_into_an_interrupt(weather):
    url, _ = weather
    remote = RemoteAgent(url)
    graph = one_node_graph(remote.as_node())
    config = {"configurable": {"thread_id": "t1"}}

    async def main():
        out = [x async for x in graph.astream({"messages": ["weather in Lima"]}, config, stream_mode=["messages", "custom"])]
        tokens = "".join(chunk[0].content for mode, chunk in out if mode == "messages")
        assert tokens == "Weather in Lima: sunny"
        assert any(mode == "custom" and chunk["state"] == "working" for mode, chunk in out)
        assert (await graph.aget_state(config)).values["messages"][-1].content == "Weather in Lima: sunny"
        config2 = {"configurable": {"thread_id": "t2"}}
        await graph.ainvoke({"messages": ["weather please"]}, config2)
        paused = await graph.aget_state(config2)
        assert paused.interrupts[0].value["question"] == "Which city?"
        final = await graph.ainvoke(Command(resume="in Cairo"), config2)
        assert final["messages"][-1].content == "Weather in Cairo: sunny"
        assert final["messages"][-1].role == "assistant"

    run(main())


def test_as_tool_for_an_agent(weather):
    url, _ = weather
    tool = RemoteAgent(url, name="weather").as_tool()
    model = ScriptedChatModel([{"tool_calls": [{"name": "weather", "args": {"request": "weather in Kyiv"}}]}, "Sunny."])
    agent = create_react_agent(model, [tool])
    result = agent.invoke({"messages": ["How is the weather in Kyiv?"]})
    assert [m.content for m in result["messages"] if m.role == "tool"] == ["Weather in Kyiv: sunny"]
    asked = run(tool.ainvoke({"request": "weather please"}))
    assert "Which city?" in str(asked.content) and "task_id=" in str(asked.content)


def test_a_down_agent_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"

    async def main():
        remote = RemoteAgent(url, retries=1, timeout=2)
        with pytest.raises(RemoteAgentError, match="cannot reach"):
            await remote.send("hello")
        tool_answer = await remote.as_tool(name="down").ainvoke({"request": "hi"})
        assert "error" in str(tool_answer.content)
        await remote.aclose()

    run(main())


def test_garbage_answers_are_a_clear_error(serve_asgi):
    async def garbage(request):
        return PlainTextResponse("<html>not an agent</html>")

    url = serve_asgi(Starlette(routes=[Route("/{path:path}", garbage, methods=["GET", "POST"])]))

    async def main():
        remote = RemoteAgent(url, retries=0, timeout=5)
        with pytest.raises(RemoteAgentError):
            await remote.send("hello")
        await remote.aclose()

    run(main())




def test_a_hanging_agent_times_out(serve_asgi, weather):
    """The card answers, the agent never does: the call fails after `stream_timeout`, not never."""
    import httpx
    from starlette.responses import Response

    card_url, _ = weather
    card = httpx.get(card_url + "/.well-known/agent-card.json").text

    async def card_route(request):
        return Response(card.replace(card_url, hanging_url[0]), media_type="application/json")

    async def hang(request):
        await asyncio.sleep(4)
        return PlainTextResponse("too late")

    hanging_url = [""]
    hanging_url[0] = serve_asgi(Starlette(routes=[Route("/.well-known/agent-card.json", card_route),
                                                 Route("/{path:path}", hang, methods=["POST"])]))

    async def main():
        from a2a.client import A2AClientTimeoutError

        remote = RemoteAgent(hanging_url[0], timeout=1, stream_timeout=1, retries=0)
        with pytest.raises(RemoteAgentError) as failure:
            await remote.send("hello")
        assert isinstance(failure.value.__cause__, (A2AClientTimeoutError, httpx.TimeoutException))
        await remote.aclose()

    run(main())
