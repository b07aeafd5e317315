"""The `agentforge` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys

from agentforge._cli_a2a import add_commands as add_a2a_commands
from agentforge._cli_a2a import run as run_a2a_command
from agentforge._cli_data import add_commands as add_data_commands
from agentforge._cli_data import kb_options, open_kb
from agentforge._cli_data import run as run_data_command
from agentforge._cli_finetune import add_commands as add_finetune_commands
from agentforge._cli_finetune import run as run_finetune_command
from agentforge._cli_graphrag import add_commands as add_graphrag_commands
from agentforge._cli_graphrag import run as run_graphrag_command
from agentforge.engine import DEFAULT_MODEL, EngineError, SamplingParams
from agentforge.engine.config import KV_CACHE_DTYPES, QUANTIZATIONS
from agentforge.engine.tool_parser import TOOL_FORMATS


async def _answer(llm, messages: list[dict], params: SamplingParams) -> str:
    """Stream one reply to stdout and return its text."""
    text = ""
    async for out in llm.chat(messages, params):
        delta = out.outputs[0].delta
        text += delta
        print(delta, end="", flush=True)
    print(flush=True)
    return text


async def _agent_turn(agent, line: str, config: dict) -> None:
    """Run one user turn through the agent, streaming its tokens, tool calls and tool results."""
    async for mode, chunk in agent.astream({"messages": [{"role": "user", "content": line}]}, config,
                                           stream_mode=["messages", "updates"]):
        if mode == "messages" and chunk[1]["langgraph_node"] == "agent":
            print(chunk[0].content, end="", flush=True)
        elif mode == "updates":
            for update in chunk.values():
                for message in update.get("messages", []) if isinstance(update, dict) else []:
                    for call in message.tool_calls or ():
                        print(f"\n[tool call] {call.function.name}({call.function.arguments})", flush=True)
                    if message.role == "tool":
                        print(f"[tool result] {message.content[:500]}", flush=True)
    print(flush=True)


def _with_tracing(graph):
    """`graph`, traced to LangSmith when LangSmith's own switch (LANGSMITH_TRACING=true) is on."""
    from agentforge.tracing.langsmith import LangSmithExporter, tracing_enabled

    if not tracing_enabled():
        return graph
    from agentforge.tracing import traced

    return traced(graph, [LangSmithExporter()])


def _flush_traces() -> None:
    from agentforge.tracing import flush

    flush(timeout=10)


async def _agent_chat(args: argparse.Namespace) -> int:
    """`agentforge chat` with tools: the demo agent, one thread per conversation."""
    import uuid

    from agentforge.agents import EngineChatModel
    from agentforge.demo import demo_agent, docs_knowledge_base
    from agentforge.graphs import InMemorySaver

    print(f"loading {args.model} and indexing the docs ...", file=sys.stderr, flush=True)
    model = EngineChatModel(args.model, temperature=args.temperature, top_p=args.top_p, max_tokens=args.max_tokens,
                            seed=args.seed, dtype=args.dtype, speculative_tokens=args.speculative_tokens)
    agent = _with_tracing(demo_agent(model, knowledge_base=docs_knowledge_base(), checkpointer=InMemorySaver()))
    config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": args.max_steps}
    if args.once is not None:
        await _agent_turn(agent, args.once, config)
        await asyncio.to_thread(_flush_traces)
        return 0
    print("AgentForge agent chat (calculator, docs) — /reset clears the conversation, /exit quits.", file=sys.stderr)
    while True:
        try:
            line = (await asyncio.to_thread(input, "you> ")).strip()
        except EOFError:
            print(file=sys.stderr)
            return 0
        if line in ("/exit", "/quit"):
            return 0
        if line == "/reset":
            config["configurable"]["thread_id"] = uuid.uuid4().hex
            continue
        if line:
            print("bot> ", end="", flush=True)
            try:
                await _agent_turn(agent, line, config)
            except EngineError as exc:
                print(f"\n[error] {exc}", file=sys.stderr)


async def _chat(args: argparse.Namespace) -> int:
    if not args.no_tools:
        return await _agent_chat(args)
    params = SamplingParams(
        temperature=args.temperature,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        max_tokens=args.max_tokens,
        seed=args.seed,
    )
    from agentforge.engine import AsyncLLM  # torch loads here, not for `agentforge mcp ...`

    print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    llm = AsyncLLM(args.model, dtype=args.dtype, speculative_tokens=args.speculative_tokens)
    system = [{"role": "system", "content": args.system}] if args.system else []
    try:
        if args.once is not None:
            await _answer(llm, [*system, {"role": "user", "content": args.once}], params)
            return 0
        print("AgentForge chat — /reset clears the conversation, /exit (or Ctrl-D) quits.", file=sys.stderr)
        history: list[dict] = []
        while True:
            try:
                line = await asyncio.to_thread(input, "you> ")
            except EOFError:
                print(file=sys.stderr)
                return 0
            line = line.strip()
            if not line:
                continue
            if line in ("/exit", "/quit"):
                return 0
            if line == "/reset":
                history.clear()
                continue
            history.append({"role": "user", "content": line})
            print("bot> ", end="", flush=True)
            try:
                reply = await _answer(llm, [*system, *history], params)
            except EngineError as exc:  # e.g. the conversation outgrew the context window
                history.pop()
                print(f"\n[error] {exc}", file=sys.stderr)
                continue
            history.append({"role": "assistant", "content": reply})
    finally:
        llm.shutdown()


def _demo(args: argparse.Namespace) -> int:
    """`agentforge demo`: the server with the chat app and the demo agent (assistants "agent" and
    "agent-approval", which asks before each tool call), its runs traced to /traces."""
    import uvicorn

    from agentforge.agents import EngineChatModel
    from agentforge.demo import demo_agent, docs_knowledge_base
    from agentforge.engine import AsyncLLM
    from agentforge.rag.knowledge_base import default_path
    from agentforge.server import ServerConfig, create_app

    traces = default_path("agentforge-docs").parents[1] / "traces.sqlite"  # next to the knowledge bases
    config = ServerConfig.load(None, model=args.model, host=args.host, port=args.port, trace_store=str(traces), a2a=True)
    print(f"loading {config.model} ...", file=sys.stderr, flush=True)
    llm = AsyncLLM(config.model, dtype=config.dtype, quantization=config.quantization,
                   kv_cache_dtype=config.kv_cache_dtype, speculative_tokens=config.speculative_tokens,
                   kv_cache_populate=config.kv_cache_populate)
    model = EngineChatModel.over(llm, max_tokens=args.max_tokens)
    print("indexing the docs (knowledge base 'agentforge-docs') ...", file=sys.stderr, flush=True)
    docs = docs_knowledge_base()
    graphs = {"agent": demo_agent(model, knowledge_base=docs),
              "agent-approval": demo_agent(model, knowledge_base=docs, approve_tools=True)}
    server = uvicorn.Server(uvicorn.Config(create_app(llm, config=config, graphs=graphs), host=config.host,
                                           port=config.port, log_level="warning"))
    print(f"AgentForge demo: chat app at http://{config.host}:{config.port}/ (Agent mode: calculator and docs search); "
          f"Agent Protocol assistants 'agent', 'agent-approval', also A2A agents at /a2a/agent and /a2a/agent-approval; "
          f"OpenAI API at /v1. Ctrl-C stops.", flush=True)
    try:
        server.run()
    finally:
        llm.shutdown()
    return 0


def _mcp_serve(args: argparse.Namespace) -> int:
    """`agentforge mcp serve ...`: build the server, then run it on stdio or HTTP."""
    import importlib

    from agentforge.tools.mcp_server import MCPToolServer, graph_tool

    try:
        if args.what == "calculator":
            from agentforge.tools.servers import calculator

            server = calculator.build()
        elif args.what == "kb":
            from agentforge.rag.mcp_server import build

            if not args.kb:
                print("error: kb needs --kb NAME", file=sys.stderr)
                return 2
            server = build(open_kb(args))
        elif args.what == "graphrag":
            from agentforge.agents import EngineChatModel
            from agentforge.rag.graphrag import GraphIndex
            from agentforge.rag.graphrag.mcp_server import build

            if not args.kb:
                print("error: graphrag needs --kb NAME", file=sys.stderr)
                return 2
            server = build(GraphIndex(open_kb(args), EngineChatModel(DEFAULT_MODEL, max_tokens=256)))
        elif args.what in ("filesystem", "sqlite"):
            if not args.target:
                print(f"error: {args.what} needs a {'root directory' if args.what == 'filesystem' else 'database file'}",
                      file=sys.stderr)
                return 2
            module = importlib.import_module(f"agentforge.tools.servers.{args.what}")
            server = module.build(args.target, args.read_only) if args.what == "filesystem" else module.build(args.target)
        elif ":" in args.what:
            module_name, attribute = args.what.split(":", 1)
            obj = getattr(importlib.import_module(module_name), attribute)
            if isinstance(obj, MCPToolServer):
                server = obj
            elif hasattr(obj, "_is_compiled_graph"):
                server = MCPToolServer(attribute, [graph_tool(obj, attribute)])
            else:
                server = MCPToolServer(module_name, list(obj))
        else:
            print(f"error: unknown server {args.what!r}; use calculator, filesystem, sqlite, kb, graphrag or "
                  f"module:attribute",
                  file=sys.stderr)
            return 2
    except (ValueError, ImportError, AttributeError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server.run("http" if args.http else "stdio", host=args.host, port=args.port, token=args.token)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agentforge", description="Agents, tools and RAG on an embedded LLM engine.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    chat = commands.add_parser("chat", help="the demo agent (calculator, docs) in the terminal; --no-tools: plain chat")
    chat.add_argument("--model", default=DEFAULT_MODEL, help=f"alias, GGUF file or HF folder (default: {DEFAULT_MODEL})")
    chat.add_argument("--once", metavar="QUESTION", help="answer one question and exit")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--max-tokens", type=int, default=512)
    chat.add_argument("--temperature", type=float, default=0.2)
    chat.add_argument("--top-p", type=float, default=0.9)
    chat.add_argument("--repetition-penalty", type=float, default=1.1,
                      help="plain chat only: small models loop without it (it garbles tool arguments)")
    chat.add_argument("--no-tools", action="store_true", help="plain chat with the model, no agent")
    chat.add_argument("--max-steps", type=int, default=12, help="agent: the run's recursion limit")
    chat.add_argument("--seed", type=int)
    chat.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    chat.add_argument("--speculative-tokens", type=int, default=5,
                      help="n-gram speculative decoding: draft tokens per step (0: off; output is the same)")
    serve_api = commands.add_parser("serve", help="serve the OpenAI-compatible API (/v1/chat/completions, ...)",
                                    description="Settings come from agentforge.toml (or --config), then AGENTFORGE_* "
                                                "environment variables, then these flags.")
    serve_api.add_argument("--config", help="a TOML file (default: ./agentforge.toml when present)")
    serve_api.add_argument("--model", help=f"alias, GGUF file or HF folder (default: {DEFAULT_MODEL})")
    serve_api.add_argument("--served-model-name", help="the model name clients use (default: --model)")
    serve_api.add_argument("--host")
    serve_api.add_argument("--port", type=int)
    serve_api.add_argument("--dtype", choices=["float32", "bfloat16"])
    serve_api.add_argument("--quantization", choices=list(QUANTIZATIONS), help="weight-only quantization")
    serve_api.add_argument("--kv-cache-dtype", choices=list(KV_CACHE_DTYPES),
                           help="KV cache element type: int8, or bfloat16 / float16 under float32 (more tokens)")
    serve_api.add_argument("--speculative-tokens", type=int, help="n-gram draft tokens per step while few "
                                                                   "requests run (default 5; 0: off)")
    serve_api.add_argument("--tool-format", choices=sorted(TOOL_FORMATS),
                           help="tool-call format to prompt and parse (default: the model's own)")
    serve_api.add_argument("--lora", action="append", dest="loras", metavar="NAME=FOLDER",
                           help="serve a LoRA adapter beside the base, as model '<model>:NAME' (repeatable)")
    serve_api.add_argument("--tool-adapter", help="adapter for chat requests with tools: auto (the shipped "
                                                  "tool-calling one), a --lora NAME, or none")
    serve_api.add_argument("--runtime-lora-updates", action="store_true", default=None,
                           help="let clients load and unload adapters (/v1/load_lora_adapter)")
    serve_api.add_argument("--graph", action="append", dest="graphs", metavar="NAME=MODULE:ATTR",
                           help="serve a compiled graph as assistant NAME through the Agent Protocol (repeatable)")
    serve_api.add_argument("--a2a", action="store_true", default=None,
                           help="also serve each graph over A2A at /a2a/NAME (card at /a2a/NAME/.well-known/agent-card.json)")
    serve_api.add_argument("--public-url", help="the address A2A peers use (default: http://HOST:PORT)")
    serve_api.add_argument("--api-key", action="append", dest="api_keys", help="require this key (repeatable)")
    serve_api.add_argument("--rate-limit-rpm", type=int, help="requests per minute per key")
    serve_api.add_argument("--rate-limit-tpm", type=int, help="tokens per minute per key")
    serve_api.add_argument("--max-prompt-tokens", type=int)
    serve_api.add_argument("--redact-pii", action="store_true", default=None, help="mask e-mails, phones, cards in answers")
    demo = commands.add_parser("demo", help="the chat app with the demo agent (what `make demo` runs)")
    demo.add_argument("--model", default=DEFAULT_MODEL, help=f"alias, GGUF file or HF folder (default: {DEFAULT_MODEL})")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--max-tokens", type=int, default=512, help="per model reply")
    mcp = commands.add_parser("mcp", help="Model Context Protocol servers")
    mcp_commands = mcp.add_subparsers(dest="mcp_command", metavar="MCP_COMMAND", required=True)
    serve = mcp_commands.add_parser("serve", help="serve a shipped server, or Tools/a graph from your module")
    serve.add_argument("what", help="calculator | filesystem | sqlite | kb | graphrag | module:attribute (a Tool "
                                    "list, an MCPToolServer or a compiled graph)")
    serve.add_argument("target", nargs="?", help="the root directory (filesystem) or database file (sqlite)")
    serve.add_argument("--read-only", action="store_true", help="filesystem: no write_file tool")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on HTTP")
    kb_options(serve, required=False)
    add_data_commands(commands)
    add_finetune_commands(commands)
    add_a2a_commands(commands)
    add_graphrag_commands(commands)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "mcp":
        return _mcp_serve(args)
    if args.command in ("demo", "ingest", "ask", "eval", "finetune", "a2a", "graphrag"):
        try:
            if args.command == "finetune":
                return run_finetune_command(args)
            if args.command == "a2a":
                return run_a2a_command(args)
            if args.command == "graphrag":
                return run_graphrag_command(args)
            return _demo(args) if args.command == "demo" else run_data_command(args)
        except (EngineError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.command == "serve":
        from agentforge.server import ServerConfig, serve

        try:
            settings = {k: getattr(args, k) for k in ("model", "served_model_name", "host", "port", "dtype",
                                                      "quantization", "kv_cache_dtype", "speculative_tokens",
                                                      "tool_format", "api_keys", "rate_limit_rpm", "rate_limit_tpm",
                                                      "max_prompt_tokens", "redact_pii", "tool_adapter",
                                                      "runtime_lora_updates", "a2a", "public_url")}
            for flag, key, form in (("graphs", "graphs", "NAME=MODULE:ATTR"), ("loras", "lora_adapters", "NAME=FOLDER")):
                if getattr(args, flag):
                    pairs = [g.split("=", 1) for g in getattr(args, flag)]
                    if any(len(p) != 2 or not p[0] for p in pairs):
                        raise ValueError(f"--{flag.rstrip('s')} takes {form}")
                    settings[key] = dict(pairs)
            serve(ServerConfig.load(args.config, **settings))
        except (EngineError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        return asyncio.run(_chat(args))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
