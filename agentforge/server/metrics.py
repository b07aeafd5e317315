"""Prometheus metrics for `GET /metrics`: requests, tokens, latency, the engine's load (and a MoE
model's expert load), and the served graphs' runs, nodes, errors and interrupts (fed as a trace
exporter)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

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

        engine = getattr(llm, "engine", None)
        if engine is not None and engine.expert_load():  # a mixture-of-experts model: how its experts are used
            r.register(_ExpertLoad(engine))

        self.graph_runs = Counter("agentforge_graph_runs", "Graph runs by outcome", ["graph", "status"], registry=r)
        self.graph_run_seconds = Histogram("agentforge_graph_run_seconds", "Graph run duration", ["graph"],
                                           buckets=LATENCY_BUCKETS, registry=r)
        self.node_seconds = Histogram("agentforge_graph_node_seconds", "Node (task) duration", ["graph", "node"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.node_errors = Counter("agentforge_graph_node_errors", "Nodes that failed", ["graph", "node"], registry=r)
        self.interrupts = Counter("agentforge_graph_interrupts", "Runs paused by interrupt()", ["graph"], registry=r)

    def export(self, spans) -> None:
        """A trace exporter: a finished run's span tree into the graph metrics."""
        root, graph = spans[0], spans[0].name
        interrupted = any(s.attributes.get("interrupted") for s in spans)
        self.graph_runs.labels(graph, "error" if root.error else "interrupted" if interrupted else "success").inc()
        self.graph_run_seconds.labels(graph).observe(root.end - root.start)
        if interrupted:
            self.interrupts.labels(graph).inc()
        for span in spans[1:]:
            if span.kind in ("node", "tool"):
                node = span.attributes.get("node", span.name)
                self.node_seconds.labels(graph, node).observe(span.end - span.start)
                if span.error and not span.attributes.get("interrupted"):
                    self.node_errors.labels(graph, node).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ExpertLoad:
    """`agentforge_moe_expert_tokens_total{layer, expert}`, read from the model when scraped."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def collect(self):
        family = CounterMetricFamily("agentforge_moe_expert_tokens", "Tokens routed to each expert of each MoE layer",
                                     labels=["layer", "expert"])
        for layer, counts in self.engine.expert_load().items():
            for expert, count in enumerate(counts):
                family.add_metric([str(layer), str(expert)], count)
        yield family
