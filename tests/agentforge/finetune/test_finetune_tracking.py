"""A training run's metrics beyond the progress bar: a trace in `agentforge.tracing` (local store,
any exporter), and Weights & Biases in offline mode."""

import pytest

from agentforge.finetune import finetune
from agentforge.tracing import SqliteTraceStore


class Collect:
    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)


def test_a_run_is_a_trace_with_a_span_per_logging_interval(tiny_llama_dir, facts_rows, tmp_path, write_jsonl):
    data = write_jsonl(tmp_path / "facts.jsonl", facts_rows[:32])
    held_out = write_jsonl(tmp_path / "held.jsonl", facts_rows[32:40])
    collect = Collect()
    result = finetune({"model": str(tiny_llama_dir), "dataset": str(data), "eval_dataset": str(held_out),
                       "output_dir": str(tmp_path / "out"), "max_steps": 4, "logging_steps": 2, "eval_steps": 2,
                       "batch_size": 8, "trace_store": str(tmp_path / "traces.db"), "run_name": "facts"},
                      exporters=[collect])
    root, *children = collect.spans
    assert (root.name, root.kind, root.parent_id, root.error) == ("facts", "finetune", None, None)
    assert root.inputs["method"] == "sft" and root.outputs["train_loss"] == result.metrics["train_loss"]
    assert root.attributes["eval_loss"] == result.metrics["eval_loss"]
    train = [s for s in children if s.kind == "train"]
    evals = [s for s in children if s.kind == "eval"]
    assert [s.attributes["step"] for s in train] == [2, 4]
    assert all("loss" in s.attributes and s.attributes["tokens_per_second"] > 0 for s in train)
    assert [s.attributes["step"] for s in evals] == [0, 2, 4, 4]  # on start, every 2 steps, and the final one
    assert all(s.parent_id == root.span_id and s.trace_id == root.trace_id and s.end >= s.start for s in children)
    store = SqliteTraceStore(tmp_path / "traces.db")
    [stored_root] = [s for s in store.traces() if s.kind == "finetune"]
    assert stored_root.span_id == root.span_id
    assert {s.span_id for s in store.trace(root.trace_id)} == {s.span_id for s in collect.spans}


def test_a_failed_run_leaves_a_trace_with_its_error(tiny_llama_dir, facts_rows, tmp_path, write_jsonl, monkeypatch):
    from transformers import Trainer

    step = Trainer.training_step
    calls = []

    def failing_step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the machine caught fire")
        return step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", failing_step)
    collect = Collect()
    with pytest.raises(RuntimeError, match="caught fire"):
        finetune({"model": str(tiny_llama_dir), "dataset": str(write_jsonl(tmp_path / "d.jsonl", facts_rows)),
                  "output_dir": str(tmp_path / "out"), "max_steps": 6, "logging_steps": 1, "batch_size": 8},
                 exporters=[collect])
    root, *children = collect.spans
    assert root.error == "RuntimeError: the machine caught fire" and root.end is not None
    assert [s.attributes["step"] for s in children] == [1, 2]


def test_wandb_offline_run_holds_the_training_metrics(tiny_llama_dir, facts_rows, tmp_path, write_jsonl, monkeypatch,
                                                     wandb_offline, wandb_summary, wandb_history):
    monkeypatch.setenv("WANDB_PROJECT", "agentforge-tests")
    data = write_jsonl(tmp_path / "d.jsonl", facts_rows)
    for run in (1, 2):  # each run closes its W&B run: the second gets one of its own
        result = finetune({"model": str(tiny_llama_dir), "dataset": str(data), "output_dir": str(tmp_path / f"out{run}"),
                           "max_steps": 4, "logging_steps": 2, "batch_size": 8, "report_to": ["wandb"]})
    runs = sorted(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 2
    summary, history = wandb_summary(runs[-1]), wandb_history(runs[-1])
    assert summary["train_loss"] == pytest.approx(result.metrics["train_loss"])
    steps = [h for h in history if "train/loss" in h]
    ours = [h for h in result.log_history if "loss" in h]
    assert [h["train/global_step"] for h in steps] == [2, 4]
    assert [h["train/loss"] for h in steps] == pytest.approx([h["loss"] for h in ours])
    assert [h["train/tokens_per_second"] for h in steps] == pytest.approx([h["tokens_per_second"] for h in ours])
