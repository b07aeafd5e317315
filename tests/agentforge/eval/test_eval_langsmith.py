"""LangSmith datasets and experiments through the real `langsmith` SDK, against a small stand-in
of LangSmith's REST API (datasets, examples, sessions, runs, feedback) on 127.0.0.1."""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from agentforge.eval import Example, evaluate
from agentforge.eval.langsmith import load_langsmith_dataset, upload_experiment


@pytest.fixture
def langsmith_api():
    state = {"datasets": {}, "examples": {}, "sessions": {}, "runs": {}, "feedback": []}

    def now():
        return datetime.datetime.now(datetime.timezone.utc).isoformat()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            url, query = urlparse(self.path), parse_qs(urlparse(self.path).query)
            if url.path == "/datasets":
                self._reply([d for d in state["datasets"].values() if d["name"] in query.get("name", [d["name"]])])
            elif url.path == "/examples":
                wanted = query.get("dataset", [None])[0]
                if wanted is None:  # by dataset name: resolve it
                    names = query.get("dataset_name", [])
                    wanted = next((d["id"] for d in state["datasets"].values() if d["name"] in names), None)
                examples = [e for e in state["examples"].values() if e["dataset_id"] == wanted]
                offset = int(query.get("offset", ["0"])[0])
                self._reply(examples[offset:offset + int(query.get("limit", ["100"])[0])])
            else:
                self._reply({})

        def do_POST(self):
            data = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"null")
            path = urlparse(self.path).path
            if path == "/datasets":
                dataset = {"id": str(uuid.uuid4()), "created_at": now(), "modified_at": now(),
                           "tenant_id": str(uuid.uuid4()), "data_type": "kv", **data}
                state["datasets"][dataset["id"]] = dataset
                self._reply(dataset)
            elif path == "/examples/bulk":
                for example in data:
                    state["examples"][example["id"]] = {"created_at": now(), "modified_at": now(), **example}
                self._reply([{"id": e["id"]} for e in data])
            elif path == "/sessions":
                session = {"id": str(uuid.uuid4()), "start_time": now(), "tenant_id": str(uuid.uuid4()), **data}
                state["sessions"][session["id"]] = session
                self._reply(session)
            elif path == "/runs":
                state["runs"][data["id"]] = data
                self._reply({})
            elif path == "/feedback":
                state["feedback"].append(data)
                self._reply({"id": str(uuid.uuid4()), **data})
            else:
                self._reply({})

        def _reply(self, data):
            body = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    from langsmith import Client

    yield Client(api_url=f"http://127.0.0.1:{server.server_port}", api_key="test"), state
    server.shutdown()


DATA = [Example("capital of France?", "Paris"), Example("capital of Peru?", "Lima")]


def test_upload_an_experiment_then_load_the_dataset(langsmith_api):
    client, state = langsmith_api
    run = evaluate(lambda q: "Paris" if "France" in q else "Cusco", DATA, ["exact_match", "token_f1"],
                   progress=False, name="v1")
    name = upload_experiment(run, "capitals", client=client)
    [dataset] = state["datasets"].values()
    assert dataset["name"] == "capitals"
    examples = {e["inputs"]["input"]: e for e in state["examples"].values()}
    assert {q: e["outputs"]["reference"] for q, e in examples.items()} == {"capital of France?": "Paris",
                                                                           "capital of Peru?": "Lima"}
    [session] = state["sessions"].values()
    assert session["name"] == name and session["reference_dataset_id"] == dataset["id"]
    runs = {r["inputs"]["input"]: r for r in state["runs"].values()}
    assert runs["capital of Peru?"]["outputs"] == {"output": "Cusco"}
    assert runs["capital of Peru?"]["reference_example_id"] == examples["capital of Peru?"]["id"]
    scores = {(f["run_id"], f["key"]): f["score"] for f in state["feedback"]}
    assert scores[(runs["capital of France?"]["id"], "exact_match")] == 1.0
    assert scores[(runs["capital of Peru?"]["id"], "exact_match")] == 0.0 and len(scores) == 4

    upload_experiment(run, "capitals", client=client, experiment_name="v1-again")  # the examples are reused
    assert len(state["examples"]) == 2 and len(state["sessions"]) == 2 and len(state["runs"]) == 4

    loaded = load_langsmith_dataset("capitals", client=client)
    assert sorted((e.input, e.reference) for e in loaded) == sorted((e.input, e.reference) for e in DATA)
    with pytest.raises(ValueError, match="no LangSmith dataset 'unknown'"):
        load_langsmith_dataset("unknown", client=client)
