"""Every program in examples/ runs to completion as a user would run it: a subprocess, the real model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))
ARGS = {"mcp_agent.py": ["What is 12 * 34?"]}  # a short question instead of the default


def test_there_are_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_to_completion(example):
    done = subprocess.run([sys.executable, str(example), *ARGS.get(example.name, [])], capture_output=True, text=True,
                          timeout=600, cwd=example.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), f"{example.name} printed nothing"
