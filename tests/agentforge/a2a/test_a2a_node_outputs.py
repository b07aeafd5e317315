"""What nodes can send besides text: files and data as artifacts, a plain Message as the whole
reply (direct replies), the A2A ids in their config; input a graph cannot take is rejected."""

from __future__ import annotations

from typing import TypedDict

from _a2a_helpers import collect, one_node_graph, run, sdk_client, user_message
from a2a.helpers import get_data_parts, get_message_text, new_data_part, new_text_message
from a2a.types import Artifact, Part, TaskState

from agentforge.graphs import get_stream_writer


def report(state, config):
    """Writes a file and a data artifact, then answers with the ids it served."""
    write = get_stream_writer()
    write(Artifact(artifact_id="file", name="report", parts=[Part(raw=b"col\n1\n", filename="report.csv",
                                                                  media_type="text/csv")]))
    write(Artifact(artifact_id="data", name="totals", parts=[new_data_part({"rows": 1})]))
    ids = config["configurable"]
    return {"messages": [{"role": "assistant", "content": f"{ids['a2a_task_id']} {ids['a2a_message_id']}"}]}


def test_nodes_send_file_and_data_artifacts_and_see_their_ids(serve_a2a):
    url = serve_a2a(one_node_graph(report, name="outputs"))

    async def main():
        client = await sdk_client(url, streaming=False)
        request = user_message("report please", message_id="msg-42")
        [response] = await collect(client.send_message(request))
        task = response.task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        by_id = {a.artifact_id: a for a in task.artifacts}
        assert by_id["file"].parts[0].raw == b"col\n1\n" and by_id["file"].parts[0].filename == "report.csv"
        assert get_data_parts(by_id["data"].parts) == [{"rows": 1}]
        assert get_message_text(task.status.message) == f"{task.id} msg-42"

    run(main())


def quick(state, config):
    if config["configurable"]["a2a_message_id"].startswith("quick"):
        get_stream_writer()(new_text_message("a quick answer"))
        return {}
    return {"messages": [{"role": "assistant", "content": "a task answer"}]}


def test_direct_replies_answer_with_a_message(serve_a2a):
    url = serve_a2a(one_node_graph(quick, name="outputs"), direct_replies=True)

    async def main():
        for streaming in (False, True):
            client = await sdk_client(url, streaming=streaming)
            [response] = await collect(client.send_message(user_message("hi", message_id=f"quick-{streaming}")))
            assert response.WhichOneof("payload") == "message"
            assert get_message_text(response.message) == "a quick answer"
            chunks = await collect(client.send_message(user_message("hi", message_id=f"slow-{streaming}")))
            assert chunks[0].WhichOneof("payload") == "task"
            final = chunks[-1].task if chunks[-1].HasField("task") else chunks[-1].status_update
            assert final.status.state == TaskState.TASK_STATE_COMPLETED

    run(main())


class Sum(TypedDict, total=False):
    a: int
    b: int
    total: int


def test_input_the_graph_cannot_take_is_rejected(serve_a2a):
    url = serve_a2a(one_node_graph(lambda state: {"total": state["a"] + state["b"]}, Sum, name="outputs"))

    async def main():
        client = await sdk_client(url, streaming=False)
        [rejected] = await collect(client.send_message(user_message("add two numbers")))
        assert rejected.task.status.state == TaskState.TASK_STATE_REJECTED
        assert "data part" in get_message_text(rejected.task.status.message)
        request = user_message("")
        request.message.ClearField("parts")
        request.message.parts.append(new_data_part({"a": 2, "b": 3}))
        [done] = await collect(client.send_message(request))
        assert done.task.status.state == TaskState.TASK_STATE_COMPLETED
        assert get_data_parts(done.task.artifacts[0].parts) == [{"a": 2, "b": 3, "total": 5}]

    run(main())


