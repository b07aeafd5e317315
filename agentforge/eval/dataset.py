"""Evaluation datasets: JSONL rows with an `input` and an optional `reference` (the expected
answer, or {"tool_calls": [...]} for trajectory checks) and `metadata`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(slots=True)
class Example:
    input: Any
    reference: Any = None
    metadata: dict = field(default_factory=dict)


class DatasetError(ValueError):
    """A dataset with bad rows; the message names each one by its line number."""


def load_dataset(path: str | Path) -> list[Example]:
    """Read a JSONL dataset; every bad line is named in one `DatasetError`."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    examples, problems = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: invalid JSON ({exc.msg})")
            continue
        if not isinstance(row, dict) or "input" not in row:
            problems.append(f"line {number}: needs an object with an 'input'")
            continue
        unknown = set(row) - {"input", "reference", "metadata"}
        if unknown:
            problems.append(f"line {number}: unknown keys {sorted(unknown)}")
            continue
        if not isinstance(row.get("metadata", {}), dict):
            problems.append(f"line {number}: 'metadata' must be an object")
            continue
        examples.append(Example(row["input"], row.get("reference"), row.get("metadata", {})))
    if problems:
        raise DatasetError(f"{path}: " + "; ".join(problems))
    if not examples:
        raise DatasetError(f"{path}: no rows")
    return examples
