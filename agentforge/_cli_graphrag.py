"""`agentforge graphrag ...`: index a folder into a knowledge base's graph (saying what it will
cost, then what it cost), ask it questions in each mode, list its communities, show an entity,
export GraphML."""

from __future__ import annotations

import argparse
import sys

from agentforge.engine import DEFAULT_MODEL

from ._cli_data import kb_options, open_kb


def add_commands(commands) -> None:
    graphrag = commands.add_parser("graphrag", help="knowledge graphs of knowledge bases (GraphRAG)")
    sub = graphrag.add_subparsers(dest="graphrag_command", metavar="GRAPHRAG_COMMAND", required=True)
    index = sub.add_parser("index", help="ingest PATHs into the knowledge base, then bring its graph up to date")
    index.add_argument("paths", nargs="*", metavar="PATH", help="files and folders (none: just update the graph)")
    index.add_argument("--method", choices=["llm", "fast"], help="extraction: the model (llm) or NLP, no LLM call "
                                                                 "(fast); default: the knowledge base's, else llm")
    index.add_argument("--gleanings", type=int, default=0, help="extra extraction passes per chunk (llm method)")
    index.add_argument("--max-calls", type=int, help="budget: stop before more LLM calls than this")
    index.add_argument("--max-tokens", type=int, help="budget: stop past this many prompt + output tokens")
    index.add_argument("--max-seconds", type=float, help="budget: stop after this long")
    index.add_argument("--estimate", action="store_true", help="print what indexing would cost, and stop")
    index.add_argument("--rebuild", action="store_true", help="forget the graph first (e.g. to change --method)")
    query = sub.add_parser("query", help="answer a question from the graph, with cited chunks and reports")
    query.add_argument("question")
    query.add_argument("--mode", default="local", choices=["local", "global", "drift", "hybrid"])
    query.add_argument("--k", type=int, default=4, help="chunks in a local context")
    query.add_argument("--level", type=int, default=0, help="global: the community level to map over")
    query.add_argument("--why", action="store_true", help="say why each source was in the context")
    communities = sub.add_parser("communities", help="list the communities and their reports")
    communities.add_argument("--level", type=int, help="only this level")
    entity = sub.add_parser("entity", help="an entity's description, relationships, sources and reports")
    entity.add_argument("name")
    export = sub.add_parser("export", help="write the graph as GraphML (Gephi, yEd, Cytoscape)")
    export.add_argument("file")
    for command in (index, query):
        command.add_argument("--model", default=DEFAULT_MODEL, help=f"alias, GGUF file or HF folder "
                                                                    f"(default: {DEFAULT_MODEL})")
    for command in (index, query, communities, entity, export):
        kb_options(command)


def run(args: argparse.Namespace) -> int:
    return {"index": _index, "query": _query, "communities": _communities, "entity": _entity,
            "export": _export}[args.graphrag_command](args)


def _graph(args: argparse.Namespace, kb, method: str | None = None, max_tokens: int = 256):
    """The knowledge base's graph; its model (the engine loads at the first call, so `--estimate`
    and listing need none) with room for a whole extraction or report."""
    from agentforge.agents import EngineChatModel
    from agentforge.rag.graphrag import GraphIndex

    model = EngineChatModel(args.model, max_tokens=max_tokens) if getattr(args, "model", None) else None
    return GraphIndex(kb, model, method=method, gleanings=getattr(args, "gleanings", 0))


def _index(args: argparse.Namespace) -> int:
    from agentforge.rag.graphrag import Budget

    with open_kb(args) as kb:
        if args.paths:
            stats = kb.ingest(args.paths)
            for error in stats.errors:
                print(f"skipped {error}", file=sys.stderr)
            print(f"{args.kb}: {stats.chunks} chunks ({stats.added} added, {stats.removed} removed)")
        index = _graph(args, kb, args.method, max_tokens=1024)
        try:
            if args.rebuild:
                index.reset()
            print(f"estimate ({index.method} method):\n{index.estimate().table()}")
            if args.estimate:
                return 0
            result = index.index(budget=Budget(args.max_calls, args.max_tokens, args.max_seconds))
        finally:
            index.close()
    print(f"\nmeasured:\n{result.cost.table()}")
    print(f"\n{result.entities} entities, {result.relationships} relationships, {result.communities} communities, "
          f"{result.reports} reports from {result.chunks} chunks ({result.extracted} extracted now, "
          f"{result.removed} dropped) in {result.seconds:.1f} s")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not result.complete:
        print(f"stopped by the budget ({result.stopped}); run the command again to resume", file=sys.stderr)
    return 0


def _query(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        index = _graph(args, kb)
        try:
            if not index.graph.number_of_nodes():
                print(f"error: knowledge base {args.kb!r} has no graph; run `agentforge graphrag index PATH --kb "
                      f"{args.kb}` first", file=sys.stderr)
                return 2
            answer = index.query(args.question, mode=args.mode, k=args.k, level=args.level)
        finally:
            index.close()
    print(answer.answer)
    cited = {c["n"] for c in answer.citations}
    if answer.sources:
        print("\nSources:")
        for n, hit in enumerate(answer.sources, 1):
            if n in cited or args.why:
                line = answer.why(n) if args.why else f"[{n}] {hit.source}"
                print(line + ("" if n in cited else "  (not cited)"))
    print(f"\n{answer.cost.total.calls} LLM calls, {answer.cost.total.prompt_tokens} prompt and "
          f"{answer.cost.total.output_tokens} output tokens", file=sys.stderr)
    return 0


def _communities(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        index = _graph(args, kb)
        reports = {r["community"]: r for r in index.reports}
        communities = [c for c in index.communities if args.level is None or c["level"] == args.level]
        index.close()
    if not communities:
        print("no communities: index the knowledge base first (`agentforge graphrag index`)", file=sys.stderr)
        return 1
    for c in communities:
        report = reports.get(c["id"])
        title = f"{report['title']} (rating {report['rating']:g})" if report else "(no report yet)"
        parent = f", in {c['parent']}" if c["parent"] is not None else ""
        print(f"{c['id']:>4}  level {c['level']}{parent}  {len(c['entities'])} entities  {title}")
    return 0


def _entity(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        index = _graph(args, kb)
        entity = index.entity(args.name)
        index.close()
    if entity is None:
        print(f"error: no entity {args.name!r} in the graph of {args.kb!r}", file=sys.stderr)
        return 1
    print(f"{entity['name']} ({entity['type']})\n{entity['description']}\n\nsources:")
    for source in entity["sources"]:
        print(f"  {source}")
    print("relationships:")
    for rel in entity["relationships"]:
        print(f"  {rel['with']}: {rel['description']} (weight {rel['weight']:g})")
    print("reports:")
    for report in entity["reports"]:
        print(f"  community {report['community']} (level {report['level']}): {report['title']}")
    return 0


def _export(args: argparse.Namespace) -> int:
    with open_kb(args) as kb:
        index = _graph(args, kb)
        if not index.graph.number_of_nodes():
            print(f"error: knowledge base {args.kb!r} has no graph yet", file=sys.stderr)
            return 1
        index.export_graphml(args.file)
        index.close()
    print(f"wrote {args.file}")
    return 0
