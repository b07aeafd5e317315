"""`agentforge a2a serve`: a compiled graph (or the demo agent) as an A2A server of its own."""

from __future__ import annotations

import argparse
import sys


def add_commands(commands) -> None:
    a2a = commands.add_parser("a2a", help="Agent2Agent (A2A 1.0) servers")
    sub = a2a.add_subparsers(dest="a2a_command", metavar="A2A_COMMAND", required=True)
    serve = sub.add_parser("serve", help="serve a compiled graph over A2A (JSON-RPC and HTTP+JSON); "
                                         "with no graph, the demo agent on the embedded model")
    serve.add_argument("graph", nargs="?", help="module:attribute of a compiled graph or agent")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9999)
    serve.add_argument("--public-url", help="the address peers use (default: http://HOST:PORT)")
    serve.add_argument("--name", help="the agent's name on its card (default: the graph's name)")
    serve.add_argument("--description", help="the agent's description on its card")
    serve.add_argument("--database", help="SQLite file (or SQLAlchemy URL) keeping tasks, and threads when the "
                                          "graph has no checkpointer (default for the demo: the user data folder)")
    serve.add_argument("--api-key", action="append", dest="api_keys", default=[],
                       help="require this key as a bearer token or X-API-Key (repeatable)")
    serve.add_argument("--max-body-bytes", type=int, default=1 << 20)
    serve.add_argument("--allow-private-webhooks", action="store_true",
                       help="let push notifications go to loopback/private addresses (local setups, test kits)")
    serve.add_argument("--direct-replies", action="store_true",
                       help="let nodes answer with a plain A2A Message instead of a task")
    serve.add_argument("--model", help="the demo agent's model (default: the embedded SmolLM2)")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from agentforge.a2a import A2AServer

    llm = None
    database = args.database
    if args.graph:
        from agentforge.server import load_graph

        graph = load_graph(args.graph)
    else:
        graph, llm, database = _demo_graph(args.model, database)
    url = args.public_url or f"http://{args.host}:{args.port}"
    server = A2AServer(graph, url=url, name=args.name, description=args.description, database=database,
                       api_keys=args.api_keys, max_body_bytes=args.max_body_bytes,
                       private_webhooks=args.allow_private_webhooks, direct_replies=args.direct_replies)
    print(f"A2A agent {server.card.name!r}: card at {url}/.well-known/agent-card.json, JSON-RPC at {url}, "
          f"HTTP+JSON at {url}/rest. Ctrl-C stops.", file=sys.stderr, flush=True)
    try:
        uvicorn.run(server.app(), host=args.host, port=args.port, log_level="warning")
    finally:
        if llm is not None:
            llm.shutdown()
    return 0


def _demo_graph(model_name: str | None, database: str | None):
    """The demo agent (calculator, docs search) on the embedded engine, its threads and tasks in
    `database` (default: a2a.sqlite in the user data folder)."""
    from agentforge.agents import EngineChatModel
    from agentforge.demo import demo_agent, docs_knowledge_base
    from agentforge.engine import DEFAULT_MODEL, AsyncLLM
    from agentforge.graphs import SqliteSaver
    from agentforge.rag.knowledge_base import default_path

    if database is None:
        database = str(default_path("agentforge-docs").parents[1] / "a2a.sqlite")
    print(f"loading {model_name or DEFAULT_MODEL} ...", file=sys.stderr, flush=True)
    llm = AsyncLLM(model_name or DEFAULT_MODEL)
    model = EngineChatModel.over(llm)
    checkpointer = SqliteSaver(database) if "://" not in database else None
    return demo_agent(model, knowledge_base=docs_knowledge_base(), checkpointer=checkpointer), llm, database
