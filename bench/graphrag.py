"""GraphRAG on the multi-hop fixture corpus (bench/_graphrag_corpus.py, 45 documents, 44 questions):

1. retrieval — how often every document a question needs is among the k retrieved, for vector
   search, BM25 + vector, graph retrieval and graph + BM25 + vector (fast-method graph; no LLM);
2. indexing cost on the embedded model — LLM calls, prompt and output tokens, wall time per stage,
   estimated and measured, for the "fast" and "llm" methods;
3. the peer — Microsoft's `graphrag` package's own standard pipeline on the same corpus, pointed at
   `agentforge serve` (same model), with the ratios. Give it a virtualenv holding `graphrag`
   (`python -m venv /tmp/grvenv && /tmp/grvenv/bin/pip install graphrag==3.3.0`).

    python bench/graphrag.py [--methods fast,llm] [--graphrag-venv /tmp/grvenv] [--docs N]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _graphrag_corpus import QUESTIONS, all_needed_rate, write_corpus  # noqa: E402

from agentforge.agents import EngineChatModel  # noqa: E402
from agentforge.rag import KnowledgeBase, LocalEmbedder  # noqa: E402
from agentforge.rag.graphrag import GraphIndex  # noqa: E402


def retrieval(folder: Path, root: Path, embedder) -> None:
    kb = KnowledgeBase("retrieval", path=root / "retrieval", embedder=embedder)
    kb.ingest(folder)
    index = GraphIndex(kb, method="fast", min_report_size=10**6)  # extractive reports: no model needed
    index.index()
    print(f"## retrieval: all needed documents among the k retrieved ({len(QUESTIONS)} multi-hop questions)")
    print(f"{'k':>3} {'vector':>8} {'graph':>8} {'BM25+vec':>9} {'graph+BM25+vec':>15}")
    for k in (3, 4, 5):
        rates = [all_needed_rate(lambda q: kb.search(q, k=k, mode="dense"), folder),
                 all_needed_rate(lambda q: index.retrieve(q, k=k), folder),
                 all_needed_rate(lambda q: kb.search(q, k=k), folder),
                 all_needed_rate(lambda q: index.retrieve(q, k=k, mode="hybrid"), folder)]
        print(f"{k:>3} {rates[0]:>8.0%} {rates[1]:>8.0%} {rates[2]:>9.0%} {rates[3]:>15.0%}   "
              f"graph/vector {rates[1] / rates[0]:.2f}x")


def ours(folder: Path, root: Path, embedder, method: str) -> dict:
    kb = KnowledgeBase(f"cost-{method}", path=root / f"cost-{method}", embedder=embedder)
    kb.ingest(folder)
    index = GraphIndex(kb, EngineChatModel("smollm2-135m", max_tokens=1024), method=method)
    print(f"\n## agentforge, {method} method: estimate\n{index.estimate().table()}")
    result = index.index()
    print(f"measured\n{result.cost.table()}")
    print(f"{result.entities} entities, {result.relationships} relationships, {result.communities} communities, "
          f"{result.reports} reports ({sum(r['written_by'] == 'llm' for r in index.reports)} by the model) "
          f"in {result.seconds:.0f} s; {len(result.warnings)} warnings")
    total = result.cost.total
    return {"calls": total.calls, "prompt": total.prompt_tokens, "output": total.output_tokens,
            "seconds": result.seconds, "entities": result.entities, "reports": result.reports}


def peer(folder: Path, root: Path, venv: Path, timeout: float | None) -> dict | None:
    """`graphrag index` (standard method) against `agentforge serve` on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "agentforge.cli", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    project = root / "graphrag-project"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        subprocess.run([str(venv / "bin" / "graphrag"), "init", "--root", str(project), "--model", "smollm2-135m",
                        "--embedding", "all-MiniLM-L6-v2"], check=True, capture_output=True)
        settings = (project / "settings.yaml").read_text()
        settings = re.sub(r"api_key: \$\{GRAPHRAG_API_KEY\}.*", f"api_key: none\n    api_base: http://127.0.0.1:{port}/v1",
                          settings)
        settings = settings.replace("    model: smollm2-135m\n", "    model: smollm2-135m\n    call_args:\n"
                                                                 "      max_tokens: 1024\n      temperature: 0\n", 1)
        settings += "\nconcurrent_requests: 4  # as many as agentforge's own indexing sends (GraphIndex concurrency)\n"
        (project / "settings.yaml").write_text(settings)
        for path in folder.glob("*.md"):
            shutil.copyfile(path, project / "input" / f"{path.stem}.txt")
        started = time.perf_counter()
        try:
            done = subprocess.run([str(venv / "bin" / "graphrag"), "index", "--root", str(project), "--method",
                                   "standard"], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            done = subprocess.CompletedProcess(exc.cmd, -1, (exc.stdout or b"").decode(), f"timed out after {timeout} s")
        seconds = time.perf_counter() - started
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        server.terminate()
        server.wait()
    print(f"\n## graphrag (Microsoft), standard method, against agentforge serve: exit {done.returncode} in "
          f"{seconds:.0f} s")

    def metric(name: str) -> float:
        return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", metrics, re.M))

    if done.returncode != 0:
        print(done.stdout[-1500:] + done.stderr[-1500:])
        print(f"until then: {int(metric('agentforge_requests_total'))} requests, "
              f"{int(metric('agentforge_prompt_tokens_total'))} prompt and "
              f"{int(metric('agentforge_generation_tokens_total'))} output tokens")
        return None

    counts = subprocess.run([str(venv / "bin" / "python"), "-c", (
        "import pandas as pd, json, sys; o = sys.argv[1]; print(json.dumps({t: len(pd.read_parquet(f'{o}/{t}.parquet'))"
        " for t in ('entities', 'relationships', 'communities', 'community_reports')}))"), str(project / "output")],
        capture_output=True, text=True)
    tables = json.loads(counts.stdout) if counts.returncode == 0 else {}
    calls = int(re.search(r'agentforge_requests_total\{backend="embedded",endpoint="/v1/chat/completions",'
                          r'status="200"\} (\S+)', metrics)[1].split(".")[0])
    result = {"calls": calls, "prompt": int(metric("agentforge_prompt_tokens_total")),
              "output": int(metric("agentforge_generation_tokens_total")), "seconds": seconds,
              "entities": tables.get("entities"), "reports": tables.get("community_reports")}
    print(f"{calls} LLM calls, {result['prompt']} prompt and {result['output']} output tokens; tables {tables}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default="fast,llm", help="agentforge methods to measure (comma-separated, "
                                                              "empty for none)")
    parser.add_argument("--graphrag-venv", type=Path, help="a virtualenv with Microsoft's graphrag installed")
    parser.add_argument("--graphrag-timeout", type=float, help="stop the graphrag run after this many seconds")
    parser.add_argument("--docs", type=int, help="measure indexing cost on the first N documents only")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp())
    folder = write_corpus(root / "docs")
    embedder = LocalEmbedder()
    if args.docs:  # the cost runs on the first N documents (retrieval always on all of them)
        subset = write_corpus(root / "all-docs")
        retrieval(subset, root, embedder)
        for path in sorted(folder.glob("*.md"))[args.docs:]:
            path.unlink()
    else:
        retrieval(folder, root, embedder)
    results = {m: ours(folder, root, embedder, m) for m in filter(None, args.methods.split(","))}
    if args.graphrag_venv:
        theirs = peer(folder, root, args.graphrag_venv, args.graphrag_timeout)
        if theirs:
            print("\n## ratios: agentforge / graphrag standard (same model, same corpus)")
            for method, mine in results.items():
                print(f"{method:>5}: calls {mine['calls'] / theirs['calls']:.2f}x, tokens "
                      f"{(mine['prompt'] + mine['output']) / (theirs['prompt'] + theirs['output']):.2f}x, "
                      f"wall time {mine['seconds'] / theirs['seconds']:.2f}x")


if __name__ == "__main__":
    main()
