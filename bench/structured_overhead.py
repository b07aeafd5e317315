"""Cost of grammar-constrained decoding: per-token mask time and end-to-end throughput,
constrained vs unconstrained, same requests, same run.

Workload: the engine-throughput workload (64 requests, prompts of 50-500 tokens, SmolLM2-135M)
with 128 output tokens each. The constrained run gives every request a JSON schema whose
output is long enough to fill the 128 tokens (an array of up to 64 integers), the free run the
same requests without it; both sample at temperature 1.0 with per-request seeds and ignore EOS
only in the free run (a finished JSON value ends its request, so output tokens are counted).

    python bench/structured_overhead.py [--requests 64] [--dtype float32]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from engine_throughput import workload  # noqa: E402

from agentforge.engine import LLM, SamplingParams, StructuredOutput  # noqa: E402
from agentforge.engine.grammar_mask import GrammarBackend  # noqa: E402

SCHEMA = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 999}, "minItems": 40, "maxItems": 64}


def run(llm: LLM, prompts, params) -> tuple[float, int]:
    start = time.perf_counter()
    outs = llm.generate(prompts, params)
    return time.perf_counter() - start, sum(len(o.outputs[0].token_ids) for o in outs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    prompts = workload(args.requests)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.requests} requests, dtype {args.dtype}")

    # no prefix cache: the second run would otherwise skip the prompts the first one computed
    llm = LLM("smollm2-135m", dtype=args.dtype, enable_prefix_caching=False)
    llm.generate(prompts[0][:16], SamplingParams(max_tokens=4))  # warm-up

    # Time the mask step alone: how long GrammarBackend.apply takes per constrained row.
    timings: list[float] = []
    apply = GrammarBackend.apply

    def timed_apply(self, logits, rows, matchers):
        start = time.perf_counter()
        result = apply(self, logits, rows, matchers)
        timings.append((time.perf_counter() - start) / len(rows))
        return result

    GrammarBackend.apply = timed_apply
    structured = StructuredOutput(json=SCHEMA)
    constrained = [
        SamplingParams(temperature=1.0, seed=i, max_tokens=args.output_tokens, structured=structured)
        for i in range(args.requests)
    ]
    free = [
        SamplingParams(temperature=1.0, seed=i, max_tokens=args.output_tokens, ignore_eos=True)
        for i in range(args.requests)
    ]
    t_free, n_free = run(llm, prompts, free)
    t_cons, n_cons = run(llm, prompts, constrained)
    GrammarBackend.apply = apply

    timings.sort()
    p50, p99 = timings[len(timings) // 2], timings[int(len(timings) * 0.99)]
    rate_free, rate_cons = n_free / t_free, n_cons / t_cons
    print(f"{'run':14} {'seconds':>8} {'out tokens':>11} {'out tok/s':>10}")
    print(f"{'unconstrained':14} {t_free:8.1f} {n_free:11d} {rate_free:10.1f}")
    print(f"{'constrained':14} {t_cons:8.1f} {n_cons:11d} {rate_cons:10.1f}")
    print(f"throughput loss: {100 * (1 - rate_cons / rate_free):.1f}%")
    print(f"mask fill + apply per constrained row and step: p50 {p50 * 1e6:.0f} us, p99 {p99 * 1e6:.0f} us "
          f"({len(timings)} steps)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
