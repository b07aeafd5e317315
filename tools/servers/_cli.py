"""The command line every shipped server shares: stdio by default, `--http` for streamable HTTP."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def add_transport_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on HTTP")


def serve_main(build: Callable, doc: str | None, configure: Callable[[argparse.ArgumentParser], None] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    if configure is not None:
        configure(parser)
    add_transport_options(parser)
    args = parser.parse_args()
    server = build(args)
    server.run("http" if args.http else "stdio", host=args.host, port=args.port, token=args.token)
