"""One configuration for every training method: a YAML file or the same keys in Python."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentforge.engine.registry import DEFAULT_MODEL
from agentforge.engine.tool_parser import TOOL_FORMATS

from .data import FORMATS


class ConfigError(ValueError):
    """A configuration that cannot run: unknown keys, wrong types, values out of range."""


class LoraSettings(BaseModel):
    """Low-rank adapters (PEFT): rank, scale (`alpha / r`), dropout and which linear layers get one."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class FinetuneConfig(BaseModel):
    """What to train, on what, how long, and where the result goes.

    - `method`: "sft" (supervised, loss on assistant tokens), "dpo" (preference pairs), "kto"
      (replies judged good or bad, unpaired; preference pairs are split into such rows) or "grpo"
      (reinforcement learning from `rewards` on prompt-only rows; see `rewards.py`) or "ppo" (the
      same rows and rewards, with a learned value function and per-token advantages: `ppo.py`).
    - `model`: the base model — an alias, a GGUF file or a Hugging Face folder.
    - `adapter`: "lora" trains a PEFT adapter; "qlora" the same over a 4-bit base (bitsandbytes NF4:
      less memory, slower steps); "full" updates every parameter.
    - `dataset` / `eval_dataset`: JSONL files in one of `data.FORMATS` (`format` "auto" detects it).
    - `output_dir`: checkpoints (`checkpoint-N/`, resumed from automatically) and the result
      (`adapter/` or `model/`, and `merged/` with `merge: true`).
    - `strict`: a malformed row stops the run instead of being skipped and reported.
    - GRPO and PPO: `batch_size` counts completions (`num_generations` per prompt, so a multiple of it);
      `rollouts: engine` samples them with the embedded engine, the policy's weights synced in before
      each generation, `transformers` with TRL's own `model.generate`.
    """

    model_config = ConfigDict(extra="forbid")

    method: Literal["sft", "dpo", "kto", "grpo", "ppo"] = "sft"
    model: str = DEFAULT_MODEL
    adapter: Literal["lora", "qlora", "full"] = "lora"
    lora: LoraSettings = Field(default_factory=LoraSettings)
    dataset: Path
    eval_dataset: Path | None = None
    format: str = "auto"
    output_dir: Path
    tool_format: str | None = None
    max_length: int = Field(1024, ge=8)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1)
    batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup: float = Field(0.0, ge=0)  # steps, or a fraction of all steps when below 1
    weight_decay: float = Field(0.0, ge=0)
    seed: int = 0
    logging_steps: int = Field(5, ge=1)
    save_steps: int = Field(50, ge=1)
    save_total_limit: int = Field(2, ge=1)
    eval_steps: int | None = Field(None, ge=1)
    bf16: bool = False  # bfloat16 autocast: TRL's default, but far slower than float32 on most CPUs
    gradient_checkpointing: bool = False  # recompute activations: less memory, ~30% more time
    dpo_beta: float = Field(0.1, gt=0)
    kto_beta: float = Field(0.1, gt=0)
    rewards: list[str | dict | Callable[..., Any]] = Field(default_factory=list)  # see rewards.reward_functions
    reward_weights: list[float] | None = None
    num_generations: int = Field(8, ge=2)
    max_completion_length: int = Field(128, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    kl_beta: float = Field(0.0, ge=0)  # weight of the KL penalty to the base model (0: no reference model)
    rollouts: Literal["engine", "transformers"] = "engine"
    ppo_epochs: int = Field(4, ge=1)
    gae_lambda: float = Field(0.95, ge=0, le=1)
    vf_coef: float = Field(0.1, gt=0)
    merge: bool = False
    resume: bool = True
    strict: bool = False
    report_to: list[Literal["wandb"]] = Field(default_factory=list)
    trace_store: Path | None = None  # a SQLite trace store (`agentforge serve --trace-store`) to record the run in
    run_name: str | None = None
    threads: int | None = Field(None, ge=1)

    @field_validator("model", mode="before")
    @classmethod
    def _model_path(cls, value):
        return str(value) if isinstance(value, Path) else value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value != "auto" and value not in FORMATS:
            raise ValueError(f"must be 'auto' or one of {list(FORMATS)}")
        return value

    @field_validator("tool_format")
    @classmethod
    def _known_tool_format(cls, value: str | None) -> str | None:
        if value is not None and value not in TOOL_FORMATS:
            raise ValueError(f"must be one of {sorted(TOOL_FORMATS)}")
        return value

    @model_validator(mode="after")
    def _method_settings(self) -> FinetuneConfig:
        if self.method != "ppo" and (ppo_only := self.model_fields_set & {"ppo_epochs", "gae_lambda", "vf_coef"}):
            raise ValueError(f"{', '.join(sorted(ppo_only))} are for method 'ppo', not {self.method!r}")
        if self.method in ("grpo", "ppo"):
            if not self.rewards:
                raise ValueError(f"method {self.method!r} needs at least one reward in `rewards`")
            if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
                raise ValueError(f"{len(self.reward_weights)} reward_weights for {len(self.rewards)} rewards")
            if (self.batch_size * self.gradient_accumulation_steps) % self.num_generations:
                raise ValueError(f"batch_size × gradient_accumulation_steps "
                                 f"({self.batch_size * self.gradient_accumulation_steps}) must be a multiple of "
                                 f"num_generations ({self.num_generations}): a step scores whole groups")
        elif self.rewards:
            raise ValueError(f"`rewards` are for methods 'grpo' and 'ppo', not {self.method!r}")
        return self

    @classmethod
    def of(cls, value: FinetuneConfig | dict | str | Path) -> FinetuneConfig:
        """A config from itself, a dict, or a YAML file (relative paths in it are relative to the file)."""
        if isinstance(value, FinetuneConfig):
            return value
        base = None
        if isinstance(value, (str, Path)):
            path = Path(value)
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            try:
                value = yaml.safe_load(path.read_text())
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
            if not isinstance(value, dict):
                raise ConfigError(f"{path} must hold a mapping of settings")
            base = path.parent
        try:
            config = cls.model_validate(value)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None
        if base is not None:
            for name in ("dataset", "eval_dataset", "output_dir", "trace_store"):
                path = getattr(config, name)
                if path is not None and not path.is_absolute():
                    setattr(config, name, base / path)
            config.rewards = [_relative_file(r, base) for r in config.rewards]
        return config


def _relative_file(reward, base: Path):
    """`file.py:function` in a YAML config is relative to the config's folder."""
    if isinstance(reward, str) and ".py:" in reward and not Path(reward.split(".py:")[0]).is_absolute():
        return str(base / reward)
    return reward


def _explain(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(map(str, error["loc"]))
        if error["type"] == "extra_forbidden":
            known = LoraSettings.model_fields if error["loc"][0] == "lora" and len(error["loc"]) > 1 else FinetuneConfig.model_fields
            problems.append(f"unknown key {where!r} (known: {', '.join(sorted(known))})")
        else:
            problems.append(f"{where}: {error['msg']}" if where else error["msg"].removeprefix("Value error, "))
    return "invalid fine-tuning config: " + "; ".join(problems)
