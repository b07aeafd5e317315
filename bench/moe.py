"""Grouped expert computation against the per-expert loop (what transformers does), in one run:
one random-weight MoE block the size of a small real model's (OLMoE-1B-7B: 64 experts of
2048 -> 1024 -> 2048, 8 per token), tokens/s at batch 1 (decode) and 64, each dtype; outputs checked
to agree.

    python bench/moe.py [--experts 64] [--hidden 2048] [--inter 1024] [--top-k 8] [--batches 1 64]
                        [--dtypes float32 bfloat16]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F
from engine_throughput import cpu_model

from agentforge.engine.models.mixtral import grouped_experts, looped_experts


def tokens_per_second(run, tokens: int, seconds: float = 3.0) -> float:
    run()  # warm up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds or done < 3:
        run()
        done += 1
    return done * tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experts", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--inter", type=int, default=1024)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs ({torch.backends.cpu.get_cpu_capability()}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"block: {args.experts} experts, {args.hidden} -> {args.inter} -> {args.hidden}, top-{args.top_k}")
    torch.manual_seed(0)
    for dtype in (getattr(torch, name) for name in args.dtypes):
        gate_up = (torch.randn(args.experts, 2 * args.inter, args.hidden) * 0.02).to(dtype)
        down = (torch.randn(args.experts, args.hidden, args.inter) * 0.02).to(dtype)
        for batch in args.batches:
            x = torch.randn(batch, args.hidden, dtype=dtype)
            probs = torch.softmax(torch.randn(batch, args.experts), dim=-1)
            weights, chosen = torch.topk(probs, args.top_k, dim=-1)
            weights = (weights / weights.sum(-1, keepdim=True)).to(dtype)
            inputs = (x, chosen, weights, gate_up, down, F.silu)
            difference = (grouped_experts(*inputs) - looped_experts(*inputs)).abs().max().item()
            loop = tokens_per_second(lambda: looped_experts(*inputs), batch)
            grouped = tokens_per_second(lambda: grouped_experts(*inputs), batch)
            print(f"{str(dtype).removeprefix('torch.'):>9} batch {batch:>3}: loop {loop:8.1f} tok/s, "
                  f"grouped {grouped:8.1f} tok/s, ratio {grouped / loop:.2f}x (max difference {difference:.1e})")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
