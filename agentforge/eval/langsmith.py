"""LangSmith for evaluation, through the official `langsmith` SDK: read a LangSmith dataset as
examples, and upload an eval run as an experiment on a dataset (a project whose runs point at the
dataset's examples, each metric a feedback score), to compare runs in LangSmith's UI."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

from .dataset import Example


def load_langsmith_dataset(name: str, *, client=None) -> list[Example]:
    """The examples of LangSmith dataset `name`: inputs {"input": x} become x, outputs
    {"reference": y} become y (other shapes are kept whole)."""
    from langsmith import Client
    from langsmith.utils import LangSmithNotFoundError

    client = client or Client()
    examples = []
    try:
        found = list(client.list_examples(dataset_name=name))
    except LangSmithNotFoundError:
        raise ValueError(f"no LangSmith dataset {name!r}") from None
    for example in found:
        inputs, outputs = example.inputs or {}, example.outputs or {}
        examples.append(Example(inputs["input"] if set(inputs) == {"input"} else inputs,
                                outputs["reference"] if set(outputs) == {"reference"} else (outputs or None),
                                dict(example.metadata or {})))
    if not examples:
        raise ValueError(f"the LangSmith dataset {name!r} has no examples")
    return examples


def upload_experiment(run, dataset_name: str, *, client=None, experiment_name: str | None = None) -> str:
    """Upload `run` (an `EvalRun`) as an experiment on `dataset_name` (created, and its missing
    examples added, as needed). Returns the experiment's name."""
    from langsmith import Client

    client = client or Client()
    if client.has_dataset(dataset_name=dataset_name):
        dataset = client.read_dataset(dataset_name=dataset_name)
    else:
        dataset = client.create_dataset(dataset_name, description="uploaded by agentforge eval")
    known = {_key(ex.inputs): ex.id for ex in client.list_examples(dataset_id=dataset.id)}
    example_ids, new = {}, []
    for row in run.rows:
        inputs = {"input": row["input"]}
        if row["index"] in example_ids:
            continue
        example_id = known.get(_key(inputs))
        if example_id is None:
            example_id = known[_key(inputs)] = uuid.uuid4()
            new.append({"id": example_id, "inputs": inputs, "reference_outputs": {"reference": row["reference"]}})
        example_ids[row["index"]] = example_id
    if new:
        client.create_examples(dataset_id=dataset.id, examples=new)
    name = experiment_name or f"{run.name}-{uuid.uuid4().hex[:8]}"
    project = client.create_project(name, reference_dataset_id=dataset.id,
                                    metadata={"agentforge": True, "summary": run.summary})
    feedback = []
    end = datetime.now(timezone.utc)
    for row in run.rows:
        run_id = uuid.uuid4()
        client.create_run(run.name, {"input": row["input"]}, "chain", project_name=name, id=run_id,
                          reference_example_id=example_ids[row["index"]], outputs={"output": row["output"]},
                          error=row["error"], start_time=end - timedelta(seconds=row.get("seconds", 0.0)), end_time=end)
        feedback += [(run_id, metric, score) for metric, score in row["scores"].items() if score is not None]
    client.flush()
    for run_id, metric, score in feedback:
        client.create_feedback(run_id, key=metric, score=score, trace_id=run_id, session_id=project.id)
    return name


def _key(inputs: dict) -> str:
    return json.dumps(inputs, sort_keys=True, default=str)
