"""Incremental, restartable ingestion: unchanged files cost nothing, an edited file re-embeds only
its own chunks, a deleted file loses them, bad files are reported and lose nothing, and a killed
ingestion leaves a base that a re-run completes."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from agentforge.rag import KnowledgeBase


@pytest.fixture
def docs(tmp_path, corpus):
    folder = tmp_path / "docs"
    shutil.copytree(corpus[0], folder)
    return folder


def test_reingest_edit_delete(tmp_path, docs, embedder):
    kb = KnowledgeBase("inc", path=tmp_path / "kb", embedder=embedder)
    first = kb.ingest(docs)
    assert first.added == first.chunks == kb.count() == first.embedded and not first.errors

    again = kb.ingest(docs)
    assert (again.added, again.updated, again.removed, again.embedded) == (0, 0, 0, 0)
    assert again.skipped == again.chunks == first.chunks

    edited = docs / sorted(p.name for p in docs.glob("*.md"))[0]
    before = kb.sources()[str(edited)]
    edited.write_text(edited.read_text().replace("## Culture", "## Awards\n\nIt won the Golden Gear prize twice.\n\n## Culture"))
    changed = kb.ingest(docs)
    assert changed.added >= 1 and changed.embedded == changed.added <= before + 1
    assert changed.added + changed.updated + changed.removed <= before + 1 + before  # only that file's chunks moved
    assert changed.skipped >= first.chunks - before
    assert kb.search("Golden Gear prize", k=1)[0].source == str(edited)

    now, total = kb.sources()[str(edited)], kb.count()
    edited.unlink()
    gone = kb.ingest(docs)
    assert gone.removed == now and gone.added == gone.embedded == 0
    assert str(edited) not in kb.sources() and kb.count() == total - now

    other = next(iter(kb.sources()))
    assert kb.delete(other) > 0 and other not in kb.sources()


def test_bad_input_is_reported_and_loses_nothing(tmp_path, docs, embedder):
    kb = KnowledgeBase("bad", path=tmp_path / "kb", embedder=embedder)
    indexed = kb.ingest(docs).chunks
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_bytes(b"")
    (bad / "image.png").write_bytes(bytes(range(256)) * 100)
    (bad / "broken.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(2000))
    with (bad / "huge.txt").open("wb") as f:  # 200 MB, sparse: refused by size before it is read
        f.truncate(200 * 1024 * 1024)
    (bad / "fine.md").write_text("# Fine\n\nThe Quorvald archive keeps 812 maps.")
    # a file that loaded before and is now corrupt keeps its chunks
    pdf = next(docs.glob("*.pdf"))
    pdf_chunks = kb.sources()[str(pdf)]
    pdf.write_bytes(b"%PDF-1.7\n" + os.urandom(2000))

    stats = kb.ingest([bad, docs, tmp_path / "missing"])
    reasons = {os.path.basename(e.path): e.reason for e in stats.errors}
    assert set(reasons) == {"empty.txt", "image.png", "broken.pdf", "huge.txt", "missing", pdf.name}
    assert reasons["empty.txt"] == "empty file" and "not a readable image" in reasons["image.png"]
    assert "too large (200.0 MiB" in reasons["huge.txt"] and reasons["missing"] == "no such file or directory"
    assert "unreadable PDF" in reasons["broken.pdf"]
    assert kb.sources()[str(pdf)] == pdf_chunks
    assert kb.count() == indexed + 1 and kb.search("Quorvald archive maps", k=1)[0].source == str(bad / "fine.md")


def test_a_killed_ingestion_is_finished_by_the_next_run(tmp_path, docs, embedder):
    for n in range(4):  # enough work that the kill lands mid-way
        shutil.copytree(docs, tmp_path / "more" / str(n), ignore=shutil.ignore_patterns("*.pdf"))
    script = ("import sys; from agentforge.rag import KnowledgeBase; "
              "KnowledgeBase('killed', path=sys.argv[1]).ingest(sys.argv[2])")
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "kb"), str(tmp_path / "more")])
    cache = tmp_path / "kb" / "embeddings.sqlite"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        try:
            if sqlite3.connect(cache).execute("SELECT count(*) FROM vectors").fetchone()[0] >= 100:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    assert child.poll() is None, "the ingestion ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()

    kb = KnowledgeBase("killed", path=tmp_path / "kb", embedder=embedder)
    partial = kb.count()
    finished = kb.ingest(tmp_path / "more")
    assert not finished.errors and finished.chunks > partial
    assert finished.added == finished.chunks - partial  # nothing added twice, nothing lost
    reference = KnowledgeBase("reference", path=tmp_path / "ref", embedder=embedder)
    reference.ingest(tmp_path / "more")
    assert sorted(kb.collection.get(include=[])["ids"]) == sorted(reference.collection.get(include=[])["ids"])
    again = kb.ingest(tmp_path / "more")
    assert again.added == again.embedded == 0
