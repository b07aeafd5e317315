"""`finetune(config)`: read the data, load the base, train with TRL, save what the engine serves."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import TrainerCallback

from agentforge.engine.lora import ADAPTER_META
from agentforge.tracing import Exporter

from ._traced import TracedRun, exporters_for
from .base import BaseModel, load_base
from .config import ConfigError, FinetuneConfig
from .data import Conversation, Dataset, DatasetError, Feedback, Preference, Prompt, RowError, read_dataset
from .export import merge_adapter
from .rewards import reward_functions

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FinetuneResult:
    """Where the result went and what the run measured."""

    output: Path  # `adapter/` (LoRA) or `model/` (full)
    merged: Path | None
    train_rows: int
    skipped: list[RowError]
    metrics: dict = field(default_factory=dict)  # train_loss, train_runtime, eval_loss(_before) or, for GRPO, eval_reward(_before)
    log_history: list[dict] = field(default_factory=list)


def finetune(config: FinetuneConfig | dict | str | Path, exporters: Sequence[Exporter] = ()) -> FinetuneResult:
    """Train as `config` says; resumes from the newest checkpoint in `output_dir` when there is one.
    The run is also a trace (`_traced.py`) for `exporters`, the `trace_store` and LangSmith when on."""
    config = FinetuneConfig.of(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    train = _read(config.dataset, config)
    evaluation = _read(config.eval_dataset, config) if config.eval_dataset else None
    rewards = reward_functions(config.rewards)  # a reward that cannot load fails before the model does
    checkpoint = _last_checkpoint(config.output_dir) if config.resume else None
    _claim_output_dir(config, checkpoint)
    base = load_base(config.model, four_bit=config.adapter == "qlora")
    trainer = _trainer(config, base, train, evaluation, rewards)
    targets = exporters_for(config.trace_store, exporters)
    traced = TracedRun(targets, config.run_name or f"finetune {config.method}", _settings(config)) if targets else None
    if traced:
        trainer.add_callback(traced)
    if checkpoint:
        log.warning("resuming from %s", checkpoint)
    try:
        metrics = dict(trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None).metrics)
        if evaluation is not None:
            key = "eval_reward" if config.method in ("grpo", "ppo") else "eval_loss"
            before = next((h[key] for h in trainer.state.log_history if key in h), None)
            metrics.update(trainer.evaluate(), **{f"{key}_before": before})
        output, merged = _save(config, base, trainer, metrics)
    except BaseException as exc:
        if traced:
            traced.finish(error=exc)
        _finish_wandb(config, failed=True)
        raise
    if traced:
        traced.finish(metrics)
    _finish_wandb(config, failed=False)
    skipped = train.skipped + (evaluation.skipped if evaluation else [])
    return FinetuneResult(output, merged, len(trainer.train_dataset), skipped, metrics, trainer.state.log_history)


def _finish_wandb(config: FinetuneConfig, failed: bool) -> None:
    """Close the run's W&B run (the trainer leaves it open until the process exits), so its summary
    is written now and the next run in this process gets a run of its own."""
    if "wandb" in config.report_to:
        import wandb

        if wandb.run is not None:
            wandb.finish(exit_code=1 if failed else 0)


def _read(path: Path, config: FinetuneConfig) -> Dataset:
    dataset = read_dataset(path, config.format)
    wanted = {"sft": (Conversation,), "dpo": (Preference,), "kto": (Feedback, Preference), "grpo": (Prompt,),
              "ppo": (Prompt,)}[config.method]
    if any(not isinstance(r, wanted) for r in dataset.rows):
        kinds = " or ".join(w.__name__.lower() for w in wanted)
        raise DatasetError(f"{path}: method {config.method!r} needs {kinds} rows, "
                           f"but the file is in the {dataset.format!r} format")
    if dataset.skipped:
        if config.strict:
            raise DatasetError(dataset.summary())
        log.warning("%s", dataset.summary())
    return dataset


def _rows(dataset: Dataset, config: FinetuneConfig, base: BaseModel):
    """The rows as TRL wants them: token ids with assistant masks (SFT), texts (DPO, KTO), a rendered
    prompt and the row's other keys for the rewards (GRPO, PPO)."""
    from datasets import Dataset as HFDataset

    from ._render import Renderer

    renderer = Renderer(base.tokenizer, config.tool_format)
    rows = []
    for row in dataset.rows:
        try:
            if config.method == "sft":
                rows.append(renderer.conversation(row, config.max_length))
            elif isinstance(row, Preference):
                rows.append(renderer.preference(row))
            elif isinstance(row, Feedback):
                rows.append(renderer.feedback(row))
            else:
                rows.append({**row.extra, "prompt": renderer.prompt(row, config.max_length)})
        except (ValueError, TypeError) as exc:  # e.g. too long for max_length, a template that refuses the row
            dataset.skipped.append(RowError(row.line, str(exc)))
    if not rows:
        raise DatasetError(f"{dataset.path} has no row that fits: {'; '.join(map(str, dataset.skipped[:5]))}")
    return HFDataset.from_list(rows)


def _trainer(config: FinetuneConfig, base: BaseModel, train: Dataset, evaluation: Dataset | None, rewards: list):
    try:
        from peft import LoraConfig
    except ImportError as exc:
        raise ImportError("fine-tuning needs TRL and PEFT: pip install 'agentforge[finetune]'") from exc

    common = dict(
        output_dir=str(config.output_dir), num_train_epochs=config.epochs, max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup, weight_decay=config.weight_decay,
        seed=config.seed, data_seed=config.seed, logging_steps=config.logging_steps, save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, report_to=list(config.report_to), run_name=config.run_name,
        eval_strategy="steps" if evaluation is not None and config.eval_steps else "no", eval_steps=config.eval_steps,
        use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0, max_length=None,
        include_num_input_tokens_seen="all", eval_on_start=evaluation is not None, bf16=config.bf16, gradient_checkpointing=config.gradient_checkpointing,
    )
    peft_config = None
    if config.adapter != "full":
        peft_config = LoraConfig(r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                                 target_modules=config.lora.target_modules, task_type="CAUSAL_LM")
    train_rows = _rows(train, config, base)
    eval_rows = _rows(evaluation, config, base) if evaluation is not None else None
    if config.method == "sft":
        from trl import SFTConfig, SFTTrainer

        trainer = SFTTrainer(model=base.model, args=SFTConfig(**common, completion_only_loss=False),
                             train_dataset=train_rows, eval_dataset=eval_rows, processing_class=base.tokenizer,
                             peft_config=peft_config)
    elif config.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        trainer = DPOTrainer(model=base.model, args=DPOConfig(**common, beta=config.dpo_beta),
                             train_dataset=train_rows, eval_dataset=eval_rows, processing_class=base.tokenizer,
                             peft_config=peft_config)
    elif config.method == "kto":
        from trl import KTOConfig, KTOTrainer

        trainer = KTOTrainer(model=base.model, args=KTOConfig(**common, beta=config.kto_beta),
                             train_dataset=train_rows, eval_dataset=eval_rows, processing_class=base.tokenizer,
                             peft_config=peft_config)
    else:
        trainer = _grpo_trainer(config, base, common, train_rows, eval_rows, peft_config, rewards)
    trainer.callback_handler.callbacks.insert(0, _Throughput())
    return trainer


def _grpo_trainer(config: FinetuneConfig, base: BaseModel, common: dict, train_rows, eval_rows, peft_config,
                  rewards: list):
    import os

    from trl import GRPOConfig, GRPOTrainer

    from .rollouts import EngineRollouts

    del common["max_length"], common["include_num_input_tokens_seen"]  # GRPO counts prompt and completion tokens itself
    ppo = config.method == "ppo"
    args = GRPOConfig(**common, num_generations=config.num_generations, max_completion_length=config.max_completion_length,
                      temperature=config.temperature, top_p=config.top_p, beta=config.kl_beta,
                      reward_weights=config.reward_weights, num_iterations=config.ppo_epochs if ppo else 1)
    rollouts = None
    if config.rollouts == "engine":
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is TRL's documented hook
        longest = max(len(base.tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
                      for rows in (train_rows, eval_rows) if rows is not None for row in rows)
        rollouts = EngineRollouts(base.path, base.model.config, config, longest)
    settings = dict(model=base.model, reward_funcs=rewards, args=args, train_dataset=train_rows, eval_dataset=eval_rows,
                    processing_class=base.tokenizer, peft_config=peft_config, rollout_func=rollouts)
    if ppo:
        from .ppo import PPOTrainer

        return PPOTrainer(**settings, gae_lambda=config.gae_lambda, vf_coef=config.vf_coef)
    return GRPOTrainer(**settings)


class _Throughput(TrainerCallback):
    """Adds `tokens_per_second` (input tokens since the previous log) to every log line, before the
    progress bar and W&B see it."""

    def __init__(self) -> None:
        self.last = (time.perf_counter(), 0)

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        seen = state.num_input_tokens_seen
        now = time.perf_counter()
        if logs is not None and "loss" in logs and seen:
            logs["tokens_per_second"] = round((seen - self.last[1]) / max(now - self.last[0], 1e-9), 1)
            state.log_history[-1]["tokens_per_second"] = logs["tokens_per_second"]
        self.last = (now, seen)


# settings that do not change what is trained: a run may resume under other values of these
_BOOKKEEPING = {"resume", "threads", "output_dir", "report_to", "logging_steps", "save_steps", "save_total_limit",
                "eval_steps", "trace_store", "run_name"}


def _settings(config: FinetuneConfig, exclude: set[str] = frozenset()) -> dict:
    """The config as JSON data; reward functions by their import name."""
    settings = config.model_dump(mode="json", exclude=set(exclude) | {"rewards"})
    settings["rewards"] = [f"{r.__module__}.{getattr(r, '__qualname__', type(r).__qualname__)}" if callable(r) else r
                           for r in config.rewards]
    return settings


def _claim_output_dir(config: FinetuneConfig, checkpoint: Path | None) -> None:
    """Record what this run trains (settings and data) in `output_dir/run.json`; refuse to resume
    the checkpoints of a different run, which would silently return the old model."""
    digest = hashlib.sha256(json.dumps(_settings(config, _BOOKKEEPING), sort_keys=True).encode())
    for path in (config.dataset, config.eval_dataset):
        if path is not None:
            digest.update(Path(path).read_bytes())
    record = config.output_dir / "run.json"
    if checkpoint is not None and record.exists():
        if json.loads(record.read_text()).get("fingerprint") != digest.hexdigest():
            raise ConfigError(f"{config.output_dir} holds checkpoints of a different run (its settings or data "
                              "changed): use another output_dir, delete its checkpoints, or set resume: false")
    config.output_dir.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"fingerprint": digest.hexdigest()}) + "\n")


def _last_checkpoint(output_dir: Path) -> Path | None:
    checkpoints = [p for p in output_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
                   and (p / "trainer_state.json").exists()]
    return max(checkpoints, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _save(config: FinetuneConfig, base: BaseModel, trainer, metrics: dict) -> tuple[Path, Path | None]:
    meta = {"base_model": str(config.model), "base_fingerprint": base.fingerprint, "method": config.method,
            "tool_format": config.tool_format, "dataset": str(config.dataset),
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))}}
    output = config.output_dir / ("model" if config.adapter == "full" else "adapter")
    trainer.model.save_pretrained(output)
    (output / ADAPTER_META).write_text(json.dumps(meta, indent=2))
    if config.adapter == "full":
        base.tokenizer.save_pretrained(output)
    if config.adapter == "full" or not config.merge:
        return output, None
    return output, merge_adapter(output, config.output_dir / "merged", base=load_base(config.model))
