"""Each conformance program runs on our runtime and on the real `langgraph` (differential tests)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


def _ours() -> SimpleNamespace:
    from agentforge import graphs

    return SimpleNamespace(name="agentforge", **{k: getattr(graphs, k) for k in graphs.__all__})


def _langgraph() -> SimpleNamespace:
    from langgraph import errors, types
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.config import get_stream_writer
    from langgraph.graph import END, START, MessagesState, StateGraph, add_messages
    from langgraph.runtime import Runtime, get_runtime

    return SimpleNamespace(
        name="langgraph", StateGraph=StateGraph, START=START, END=END, Send=types.Send, Command=types.Command,
        interrupt=types.interrupt, RetryPolicy=types.RetryPolicy, Overwrite=types.Overwrite,
        CachePolicy=types.CachePolicy, InMemorySaver=InMemorySaver, InvalidUpdateError=errors.InvalidUpdateError,
        GraphRecursionError=errors.GraphRecursionError, EmptyInputError=errors.EmptyInputError,
        get_stream_writer=get_stream_writer, MessagesState=MessagesState, add_messages=add_messages,
        Runtime=Runtime, get_runtime=get_runtime,
    )


@pytest.fixture(params=["agentforge", "langgraph"])
def lg(request) -> SimpleNamespace:
    """The runtime under test: ours or LangGraph, with the same names."""
    return _ours() if request.param == "agentforge" else _langgraph()


@pytest.fixture
def ours() -> SimpleNamespace:
    return _ours()


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1 (Debian's `postgresql` package, which `make test`
    installs), started for the session and stopped after it."""
    import glob
    import os
    import shutil
    import socket
    import subprocess
    import tempfile
    from pathlib import Path

    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bindirs:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; `make test` installs Debian's postgresql package")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    bindir = bindirs[-1]
    root = Path(tempfile.mkdtemp(prefix="agentforge-pg-"))  # not under pytest's 0700 tmp: postgres must enter it
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(as_postgres + [f"{bindir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(as_postgres + [f"{bindir}/pg_ctl", "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                                  f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(as_postgres + [f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
