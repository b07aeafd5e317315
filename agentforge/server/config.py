"""Server configuration: one `agentforge.toml` file, overridden by environment variables
(`AGENTFORGE_<FIELD>`), overridden by command-line flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from agentforge.engine import DEFAULT_MODEL


@dataclass
class ServerConfig:
    model: str = DEFAULT_MODEL
    served_model_name: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    dtype: str = "float32"
    quantization: str | None = None  # weight-only "int4" or "int8" (EngineConfig.quantization)
    kv_cache_dtype: str | None = None  # "int8", or "bfloat16" / "float16" under float32 (EngineConfig.kv_cache_dtype)
    speculative_tokens: int = 5  # n-gram speculative decoding while few requests run (0: off)
    kv_cache_populate: bool = True  # map the engine's whole KV cache at start-up (EngineConfig.kv_cache_populate)
    tool_format: str | None = None  # the tool-call format to prompt and parse (default: the model's)
    # LoRA adapters served beside the base ({name: PEFT folder}; clients ask for "<model>:<name>"), the
    # adapter chat requests with tools get by default ("auto": the shipped tool-calling one; "none": off),
    # and whether clients may load and unload adapters (POST /v1/load_lora_adapter, /v1/unload_lora_adapter)
    lora_adapters: dict[str, str] = field(default_factory=dict)
    tool_adapter: str = "auto"
    runtime_lora_updates: bool = False
    # a vision model's image_url parts: data URLs always; files under these folders; http(s) URLs when allowed
    image_dirs: list[str] = field(default_factory=list)
    allow_remote_images: bool = False
    api_keys: list[str] = field(default_factory=list)  # empty: no authentication
    rate_limit_rpm: int | None = None  # requests per minute per key (or per client address)
    rate_limit_tpm: int | None = None  # tokens per minute per key
    max_body_bytes: int = 8 * 1024 * 1024
    max_prompt_tokens: int | None = None
    deny_patterns: list[str] = field(default_factory=list)
    redact_pii: bool = False
    max_output_chars: int | None = None
    # routing: OpenAI-compatible upstreams ({name, url, models, model, api_key_env, timeout}), model
    # aliases, rules ({backends, model, tools, min_prompt_chars, max_prompt_chars}); "embedded" is the engine
    upstreams: list[dict] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    routes: list[dict] = field(default_factory=list)
    max_queue: int | None = None  # the engine counts as overloaded (fall back) above this many waiting sequences
    # compiled graphs to serve through the Agent Protocol: {assistant id: "module:attribute"}
    graphs: dict[str, str] = field(default_factory=dict)
    # also serve each of them over A2A at /a2a/<assistant id> (card at .../.well-known/agent-card.json),
    # announced at `public_url` (default: http://host:port)
    a2a: bool = False
    public_url: str | None = None
    # /v1/embeddings: a sentence-transformers model folder (default: the shipped all-MiniLM-L6-v2) and its name
    embedding_model: str | None = None
    embedding_name: str = "all-MiniLM-L6-v2"
    # text to image / text to video: diffusers pipeline folders served at /v1/images/generations and
    # /v1/videos under their folder names (None: off, or served by an upstream that lists the model)
    image_model: str | None = None
    video_model: str | None = None
    # knowledge bases (by name, in the data directory) whose GraphRAG graphs the viewer shows at /graphrag/<name>
    graphrag: list[str] = field(default_factory=list)
    # a SQLite file that keeps a trace of every served graph's runs, shown at /traces (None: off)
    trace_store: str | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides) -> ServerConfig:
        """Defaults < `path` (or ./agentforge.toml if present) < AGENTFORGE_* variables < `overrides`."""
        values: dict = {}
        file = Path(path) if path else Path("agentforge.toml")
        if path and not file.is_file():
            raise ValueError(f"config file {path} not found")
        if file.is_file():
            with open(file, "rb") as f:
                data = tomllib.load(f)
            values.update(data.get("server", data))
        kinds = {f.name: f.type for f in fields(cls)}
        for name, kind in kinds.items():
            env = os.environ.get(f"AGENTFORGE_{name.upper()}")
            if env is not None:
                values[name] = _parse(env, str(kind))
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(kinds)
        if unknown:
            raise ValueError(f"unknown server settings: {', '.join(sorted(unknown))}")
        return cls(**values)


def _parse(text: str, kind: str):
    if "list" in kind:
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind.startswith("bool"):
        return text.lower() in ("1", "true", "yes", "on")
    if "int" in kind:
        return int(text)
    return text
