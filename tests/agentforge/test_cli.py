"""The `agentforge` command: help, one-shot chat, interactive chat, and bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest


def agentforge(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agentforge.cli", *args], input=stdin, capture_output=True, text=True, timeout=300
    )


def test_help_lists_the_commands():
    result = agentforge("--help")
    assert result.returncode == 0
    assert "chat" in result.stdout


def test_chat_once_streams_an_answer(tiny_llama_dir):
    result = agentforge("chat", "--no-tools", "--model", str(tiny_llama_dir), "--once", "Hello?", "--max-tokens", "8", "--seed", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_interactive_chat_keeps_going_until_exit(tiny_llama_dir):
    result = agentforge("chat", "--no-tools", "--model", str(tiny_llama_dir), "--max-tokens", "4", "--seed", "0", stdin="hi\n/reset\nagain\n/exit\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("bot> ") == 2


@pytest.mark.slow
def test_chat_once_with_the_default_model():
    result = agentforge("chat", "--no-tools", "--once", "What is the capital of France?", "--temperature", "0", "--max-tokens", "24")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout


def test_unknown_model_is_a_clear_error():
    result = agentforge("chat", "--model", "no-such-model", "--once", "hi")
    assert result.returncode == 2
    assert "unknown model 'no-such-model'" in result.stderr


@pytest.mark.slow
def test_chat_runs_the_demo_agent_with_its_tools():
    result = agentforge("chat", "--once", "Compute 1234 * 5678 with the calculator.", "--temperature", "0",
                        "--max-tokens", "128")
    assert result.returncode == 0, result.stderr
    assert '[tool call] calculate({"expression": "1234 * 5678"})' in result.stdout
    assert "[tool result] 7006652" in result.stdout


def test_serve_refuses_a_graph_it_cannot_load():
    for value, message in [("nope", "NAME=MODULE:ATTR"), ("a=json", "module:attribute"),
                           ("a=json:no_such", "cannot load graph json:no_such"), ("a=json:dumps", "not a compiled graph")]:
        result = agentforge("serve", "--graph", value)
        assert result.returncode == 2 and message in result.stderr, (value, result.stderr)
