"""The `agentforge` commands for data: `ingest` and `ask` (knowledge bases) and `eval`."""

from __future__ import annotations

import argparse
import sys

from agentforge.engine import DEFAULT_MODEL


def open_kb(args: argparse.Namespace):
    from agentforge.rag import KnowledgeBase

    return KnowledgeBase(args.kb, path=args.kb_path, url=args.chroma_url)


def _ingest(args: argparse.Namespace) -> int:
    """`agentforge ingest PATH... --kb NAME`: index files into a knowledge base, report what changed."""
    with open_kb(args) as kb:
        stats = kb.ingest(args.paths, patterns=args.pattern or ("**/*",))
    for error in stats.errors:
        print(f"skipped {error}", file=sys.stderr)
    print(f"{args.kb}: {stats.documents} documents, {stats.chunks} chunks ({stats.added} added, {stats.updated} updated, "
          f"{stats.removed} removed, {stats.skipped} unchanged; {stats.embedded} embedded) in {stats.seconds:.1f} s")
    return 1 if stats.errors and not stats.chunks else 0


def _ask(args: argparse.Namespace) -> int:
    """`agentforge ask --kb NAME QUESTION`: a cited answer from the knowledge base."""
    from agentforge.agents import EngineChatModel
    from agentforge.rag.answer import create_rag_graph

    with open_kb(args) as kb:
        if kb.count() == 0:
            print(f"error: knowledge base {args.kb!r} is empty; run `agentforge ingest PATH --kb {args.kb}` first",
                  file=sys.stderr)
            return 2
        model = EngineChatModel(args.model, max_tokens=args.max_tokens, temperature=0.0)
        graph = create_rag_graph(model, kb.as_retriever(k=args.k, mode=args.mode), grade=args.grade)
        result = graph.invoke({"question": args.question})
    print(result["answer"])
    if result["citations"]:
        print("\nSources:")
        for citation in result["citations"]:
            section = f" ({citation['section']})" if citation["section"] else ""
            print(f"[{citation['n']}] {citation['source']}{section}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    """`agentforge eval DATASET --graph module:graph`: score a graph on a JSONL dataset."""
    from agentforge.eval import EvalRun, evaluate, load_dataset
    from agentforge.server import load_graph

    dataset, graph = load_dataset(args.dataset), load_graph(args.graph)
    metrics = [name.strip() for name in args.metrics.split(",") if name.strip()]
    baseline = EvalRun.from_json(args.compare) if args.compare else None
    run = evaluate(graph, dataset, metrics, concurrency=args.concurrency, repeats=args.repeats, name=args.graph)
    for metric, s in run.summary.items():
        interval = f" [{s['ci_low']:.3f}, {s['ci_high']:.3f}]" if s["mean"] is not None else ""
        mean = "n/a" if s["mean"] is None else f"{s['mean']:.3f}"
        print(f"{metric:24} {mean}{interval}  n={s['n']}" + (f"  errors={s['errors']}" if s["errors"] else ""))
    if baseline is not None:
        for metric, c in run.compare(baseline).items():
            if c["diff"] is not None:
                print(f"{metric:24} {c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] vs {args.compare}")
    if args.out:
        run.to_json(args.out)
        print(f"wrote {args.out}")
    if args.html:
        run.to_html(args.html, compared=baseline)
        print(f"wrote {args.html}")
    if args.wandb:
        print(f"logged to Weights & Biases: {run.log_to_wandb(project=args.wandb)}")
    if args.langsmith:
        from agentforge.eval import upload_experiment

        print(f"LangSmith experiment: {upload_experiment(run, args.langsmith)} on dataset {args.langsmith}")
    return 0


def kb_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--kb", required=required, metavar="NAME", help="knowledge base name")
    parser.add_argument("--kb-path", help="where the knowledge base lives (default: the user data directory)")
    parser.add_argument("--chroma-url", help="a Chroma server (`chroma run`) to keep the chunks on, http://host:port")


def add_commands(commands) -> None:
    """The `ingest`, `ask` and `eval` subcommands."""
    ingest = commands.add_parser("ingest", help="index files and folders into a knowledge base")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files and folders")
    ingest.add_argument("--pattern", action="append", help="glob inside folders (repeatable; default **/*)")
    kb_options(ingest)
    ask = commands.add_parser("ask", help="answer a question from a knowledge base, with numbered sources")
    ask.add_argument("question")
    ask.add_argument("--model", default=DEFAULT_MODEL, help=f"alias, GGUF file or HF folder (default: {DEFAULT_MODEL})")
    ask.add_argument("--k", type=int, default=4, help="passages to retrieve")
    ask.add_argument("--mode", default="hybrid", choices=["hybrid", "dense", "bm25"])
    ask.add_argument("--grade", action="store_true", help="have the model drop passages that do not help first")
    ask.add_argument("--max-tokens", type=int, default=256)
    kb_options(ask)
    evaluation = commands.add_parser("eval", help="run a graph over a JSONL dataset and score it")
    evaluation.add_argument("dataset", help='JSONL rows {"input": ..., "reference": ...}')
    evaluation.add_argument("--graph", required=True, metavar="MODULE:ATTR", help="the compiled graph to evaluate")
    evaluation.add_argument("--metrics", default="normalized_exact_match,token_f1",
                            help="comma-separated built-in metrics (default: normalized_exact_match,token_f1)")
    evaluation.add_argument("--concurrency", type=int, default=4)
    evaluation.add_argument("--repeats", type=int, default=1)
    evaluation.add_argument("--out", help="write the run (rows and summary) as JSON")
    evaluation.add_argument("--html", help="write a self-contained HTML report")
    evaluation.add_argument("--langsmith", metavar="DATASET", help="upload the run to LangSmith as an experiment "
                                                                 "on this dataset (LANGSMITH_API_KEY, ...)")
    evaluation.add_argument("--wandb", metavar="PROJECT", help="log the run to Weights & Biases (pip install wandb)")
    evaluation.add_argument("--compare", metavar="RUN.json", help="an earlier run's JSON: print the paired differences")


def run(args: argparse.Namespace) -> int:
    return {"ingest": _ingest, "ask": _ask, "eval": _eval}[args.command](args)
