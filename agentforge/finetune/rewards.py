"""Reward functions for GRPO: Python callables, per-row verifiers, or an LLM judge.

A reward in the config is one of:
- a callable in TRL's shape, `reward(prompts, completions, **row_keys) -> list[float | None]`, called
  once per batch with every other key of the prompt rows as a list (e.g. `answer=[...]`);
- a verifier, any callable with a `completion` parameter: called once per completion with that row's
  `prompt` and keys it names, returning a bool or a number (`lambda completion, answer: ...`);
- a string `module:function` or `path/to/file.py:function` naming either of those;
- `{"judge": "rubric", "model": "smollm2-135m"}`: an LLM judge scores each completion 0–10 against
  the rubric, its verdict decoded under a JSON schema so it always parses; the reward is score / 10.

A reward that raises on a row gives that row no reward (None, which GRPO leaves out of the mean) and
a warning; it never stops the run.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .config import ConfigError

log = logging.getLogger(__name__)

Reward = Callable[..., list[float | None]]


def reward_functions(specs: list) -> list[Reward]:
    """The config's `rewards` as functions in TRL's batch shape, each safe against its own errors."""
    return [_safe(_resolve(spec)) for spec in specs]


def _resolve(spec) -> Callable:
    if isinstance(spec, dict):
        unknown = set(spec) - {"judge", "model"}
        if "judge" not in spec or unknown:
            raise ConfigError(f"a reward given as a mapping is an LLM judge: {{judge: rubric, model: ...}}, got {spec!r}")
        return llm_judge(spec["judge"], **({"model": spec["model"]} if "model" in spec else {}))
    if callable(spec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise ConfigError(f"reward {spec!r}: expected a callable, 'module:function', 'file.py:function' or a judge")
    where, name = spec.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            module_spec = importlib.util.spec_from_file_location(Path(where).stem, where)
            if module_spec is None or not Path(where).is_file():
                raise ConfigError(f"reward {spec!r}: no file {where}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
        function = getattr(module, name)
    except ConfigError:
        raise
    except Exception as exc:  # an import error, a syntax error in the file, a missing name
        raise ConfigError(f"reward {spec!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
    if not callable(function):
        raise ConfigError(f"reward {spec!r} is not callable")
    return function


def _safe(function: Callable) -> Reward:
    """`function` in TRL's batch shape (verifiers applied row by row); errors cost a row its reward."""
    name = getattr(function, "__name__", type(function).__name__)
    if name == "<lambda>":
        name = "reward"
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        parameters = {}
    per_row = "completion" in parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())

    def row_call(i: int, prompts: list, completions: list, kwargs: dict) -> float | None:
        row = {"prompt": prompts[i], "completion": completions[i]}
        row.update({k: v[i] for k, v in kwargs.items() if isinstance(v, list) and len(v) == len(completions)})
        if not takes_all:
            row = {k: v for k, v in row.items() if k in parameters}
        try:
            return _number(function(**row))
        except Exception as exc:
            log.warning("reward %s failed on completion %d: %s: %s", name, i, type(exc).__name__, exc)
            return None

    def batch_call(prompts: list, completions: list, kwargs: dict) -> list[float | None]:
        values = function(prompts=prompts, completions=completions, **kwargs)
        if len(values) != len(completions):
            raise ValueError(f"returned {len(values)} rewards for {len(completions)} completions")
        return [_number(v) for v in values]

    def reward(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
        if per_row:
            return [row_call(i, prompts, completions, kwargs) for i in range(len(completions))]
        try:
            return batch_call(prompts, completions, kwargs)
        except Exception as exc:  # score the rows one at a time, to lose only the ones that fail
            log.warning("reward %s failed on a batch (%s: %s); scoring row by row", name, type(exc).__name__, exc)
            out = []
            for i in range(len(completions)):
                one = {k: v[i:i + 1] if isinstance(v, list) and len(v) == len(completions) else v
                       for k, v in kwargs.items()}
                try:
                    out.extend(batch_call(prompts[i:i + 1], completions[i:i + 1], one))
                except Exception as row_exc:
                    log.warning("reward %s failed on completion %d: %s", name, i, row_exc)
                    out.append(None)
            return out

    reward.__name__ = name
    return reward


def _number(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    number = float(value)
    if number != number:  # NaN: no reward
        return None
    return number


class _Verdict(BaseModel):
    reasoning: str = Field(max_length=300)
    score: int = Field(ge=0, le=10)


def llm_judge(rubric: str, model: str = "smollm2-135m", **engine_options: Any) -> Reward:
    """A reward that asks an LLM (on the embedded engine) to score each completion 0–10 against the
    rubric; its verdict is decoded under a JSON schema, so every answer parses."""
    from agentforge.engine import LLM, SamplingParams

    if not isinstance(rubric, str) or not rubric.strip():
        raise ConfigError("an LLM judge needs a non-empty rubric")
    llm = LLM(model, **{"tool_adapter": None, "kv_cache_bytes": 256 << 20, **engine_options})
    params = SamplingParams(temperature=0, max_tokens=200)

    def judge(prompts: list, completions: list, **_: Any) -> list[float | None]:
        conversations = [[{"role": "system", "content": "You grade answers. Rubric: " + rubric},
                          {"role": "user", "content": f"Task:\n{_text(p)}\n\nAnswer to grade:\n{_text(c)}\n\n"
                                                      "Give a short reasoning, then a score from 0 to 10."}]
                         for p, c in zip(prompts, completions)]
        outputs = llm.chat(conversations, params, response_format=_Verdict)
        return [out.outputs[0].parsed.score / 10 if out.outputs[0].parsed is not None else None for out in outputs]

    judge.__name__ = "llm_judge"
    return judge


def _text(value) -> str:
    if isinstance(value, list):  # a conversation
        return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in value)
    return str(value)
