"""Prometheus metrics for `GET /metrics`: requests, tokens, latency and the engine's load."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """One registry per app, so several apps (tests) do not share counters."""

    def __init__(self, llm) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("agentforge_requests", "HTTP API requests", ["endpoint", "status", "backend"], registry=r)
        self.prompt_tokens = Counter("agentforge_prompt_tokens", "Prompt tokens processed", registry=r)
        self.generation_tokens = Counter("agentforge_generation_tokens", "Tokens generated", registry=r)
        self.ttft = Histogram("agentforge_time_to_first_token_seconds", "Time to first token", buckets=LATENCY_BUCKETS,
                              registry=r)
        self.tpot = Histogram("agentforge_time_per_output_token_seconds", "Time per output token after the first",
                              buckets=LATENCY_BUCKETS, registry=r)
        stats = llm.stats  # a snapshot the engine thread refreshes every step
        Gauge("agentforge_queue_length", "Sequences waiting to be scheduled", registry=r).set_function(
            lambda: stats().waiting)
        Gauge("agentforge_running_sequences", "Sequences being decoded", registry=r).set_function(
            lambda: stats().running)
        Gauge("agentforge_kv_cache_blocks_total", "KV cache blocks", registry=r).set_function(
            lambda: stats().kv_blocks_total)
        Gauge("agentforge_kv_cache_blocks_used", "KV cache blocks held by live sequences", registry=r).set_function(
            lambda: stats().kv_blocks_used)
        Gauge("agentforge_kv_cache_usage_ratio", "Fraction of KV cache blocks in use", registry=r).set_function(
            lambda: stats().kv_blocks_used / max(stats().kv_blocks_total, 1))

    def render(self) -> bytes:
        return generate_latest(self.registry)
