"""Bad input gets the protocol's error and the server keeps serving; credentials are enforced;
0.3 peers are served through the SDK's compat layer."""

from __future__ import annotations

import json

import httpx
import pytest
from _a2a_helpers import calculator_agent, collect, run, user_message
from a2a.client import ClientConfig, ClientFactory
from a2a.types import AgentCard, TaskState

from agentforge.a2a import RemoteAgent, RemoteAgentError

V1 = {"A2A-Version": "1.0", "content-type": "application/json"}


def _rpc(url: str, method: str, params: dict, headers: dict | None = None, raw: str | None = None) -> httpx.Response:
    body = raw if raw is not None else json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
    return httpx.post(url + "/", content=body, headers={**V1, **(headers or {})}, timeout=30)


def _send(text: str) -> dict:
    return {"message": {"messageId": f"m-{text[:8]}", "role": "ROLE_USER", "parts": [{"text": text}]}}


def test_each_bad_request_gets_the_protocol_error_and_the_server_keeps_serving(serve_a2a):
    url = serve_a2a(calculator_agent(["first", "second", "third"]), max_body_bytes=10_000)
    assert _rpc(url, "GetTask", {"id": "no-such-task"}).json()["error"]["code"] == -32001  # TaskNotFound
    assert httpx.get(url + "/rest/tasks/no-such-task", headers=V1).status_code == 404
    assert _rpc(url, "", {}, raw="{not json").json()["error"]["code"] == -32700  # parse error
    assert _rpc(url, "", {}, raw='{"jsonrpc": "2.0", "id": 1}').json()["error"]["code"] == -32600  # no method
    assert _rpc(url, "NoSuchMethod", {}).json()["error"]["code"] == -32601
    assert _rpc(url, "GetTask", {"id": "x"}, headers={"A2A-Version": "9.9"}).json()["error"]["code"] == -32009
    big = _rpc(url, "SendMessage", _send("x" * 20_000))
    assert big.status_code == 413 and big.json()["error"]["code"] == -32600
    rest_big = httpx.post(url + "/rest/message:send", headers=V1, content=json.dumps(_send("y" * 20_000)))
    assert rest_big.status_code == 413 and rest_big.json()["error"]["status"] == "INVALID_ARGUMENT"
    done = _rpc(url, "SendMessage", _send("hello")).json()["result"]["task"]
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"
    assert _rpc(url, "CancelTask", {"id": done["id"]}).json()["error"]["code"] == -32002  # not cancelable
    # and it still serves
    again = _rpc(url, "SendMessage", _send("again")).json()["result"]["task"]
    assert again["status"]["state"] == "TASK_STATE_COMPLETED"


def test_keys_are_enforced_and_declared_in_the_card(serve_a2a):
    url = serve_a2a(calculator_agent(["yes", "yes again"]), api_keys=["s3cret"])
    card = httpx.get(url + "/.well-known/agent-card.json").json()  # the card itself is public
    assert set(card["securitySchemes"]) == {"bearer", "apiKey"}
    assert card["securitySchemes"]["apiKey"]["apiKeySecurityScheme"]["name"] == "X-API-Key"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}):
        refused = _rpc(url, "GetTask", {"id": "x"}, headers=headers)
        assert refused.status_code == 401 and "error" in refused.json()
        assert httpx.get(url + "/rest/tasks", headers={**V1, **headers}).status_code == 401
    assert _rpc(url, "GetTask", {"id": "x"}, headers={"X-API-Key": "s3cret"}).json()["error"]["code"] == -32001

    async def main():
        with pytest.raises(RemoteAgentError):
            await RemoteAgent(url, retries=0).send("hi")
        assert (await RemoteAgent(url, token="s3cret").send("hi")).text == "yes"
        assert (await RemoteAgent(url, api_key="s3cret", binding="HTTP+JSON").send("hi")).text == "yes again"

    run(main())


def test_a_0_3_client_through_the_compat_layer(serve_a2a):
    url = serve_a2a(calculator_agent(["Hello from 1.0", "Hello again"]))

    async def main():
        card = AgentCard()
        card.CopyFrom(await RemoteAgent(url).card())
        for interface in card.supported_interfaces:
            interface.protocol_version = "0.3"  # the SDK then speaks 0.3 on the wire
        client = ClientFactory(ClientConfig(streaming=False, supported_protocol_bindings=["JSONRPC"])).create(card)
        [response] = await collect(client.send_message(user_message("hi")))
        assert response.task.status.state == TaskState.TASK_STATE_COMPLETED
        await client.close()

    run(main())
    raw = httpx.post(url + "/", json={"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
        "kind": "message", "messageId": "m1", "role": "user", "parts": [{"kind": "text", "text": "hi"}]}}}).json()
    assert raw["result"]["kind"] == "task" and raw["result"]["status"]["state"] == "completed"
    assert raw["result"]["artifacts"][0]["parts"][0]["text"] == "Hello again"


def test_the_cli_refuses_a_graph_it_cannot_load(capsys):
    from agentforge.cli import main

    assert main(["a2a", "serve", "no_such_module:graph"]) == 2
    assert "cannot load graph" in capsys.readouterr().err
