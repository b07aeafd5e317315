"""Fine-tuning against TRL, in one run, each measurement in its own process (for its peak RSS):

- GRPO step time with rollouts from our engine (`rollouts: engine`) against TRL's own generation
  (`rollouts: transformers`: `GRPOTrainer`'s `model.generate`), same config, model and data:
  SmolLM2-135M, LoRA r16, one-digit sums, 8 samples per prompt, 16 completions a step.
- LoRA SFT tokens/s and peak RSS: `agentforge.finetune` against a plain TRL `SFTTrainer` on the
  same rows and LoRA settings — once with TRL's defaults (bf16 autocast and gradient checkpointing
  on) and once with both off, as our config defaults them; and our QLoRA (NF4 base) beside them.

    python bench/finetune.py [--grpo-steps 3] [--completion-tokens 128] [--sft-steps 12] [--parts ...]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PARTS = ("grpo-engine", "grpo-transformers", "sft-ours", "sft-ours-qlora", "sft-trl-defaults", "sft-trl-fp32")
LORA = {"r": 16, "alpha": 32, "dropout": 0.0}


def correct(completion, answer):
    numbers = re.findall(r"-?\d+", completion)
    return bool(numbers) and int(numbers[-1]) == answer


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def grpo(work: Path, rollouts: str, steps: int, completion_tokens: int) -> dict:
    from agentforge.finetune import finetune

    pairs = [(a, b) for a in range(1, 10) for b in range(1, 10)]
    random.Random(0).shuffle(pairs)
    data = _write(work / "sums.jsonl", [{"prompt": f"What is {a} + {b}?", "answer": a + b} for a, b in pairs[:64]])
    from trl import GRPOTrainer

    generation = []
    generate = GRPOTrainer._generate

    def timed(self, prompts):  # the rollout part of each step, whichever backend makes it
        started = time.perf_counter()
        try:
            return generate(self, prompts)
        finally:
            generation.append(time.perf_counter() - started)

    GRPOTrainer._generate = timed
    started = time.perf_counter()
    result = finetune({"method": "grpo", "model": "smollm2-135m", "dataset": str(data), "output_dir": str(work / "out"),
                       "rewards": [correct], "num_generations": 8, "batch_size": 16, "temperature": 0.7,
                       "max_completion_length": completion_tokens, "max_steps": steps, "learning_rate": 1e-3,
                       "logging_steps": 1, "save_steps": 10_000, "lora": LORA, "rollouts": rollouts})
    step_times = [h["step_time"] for h in result.log_history if "step_time" in h]
    return {"step_s": statistics.median(step_times[1:] or step_times), "steps": len(step_times),
            "generation_s": statistics.median(generation[1:] or generation),
            "completion_tokens": statistics.mean(h["completions/mean_length"] for h in result.log_history
                                                 if "completions/mean_length" in h),
            "reward": [round(h["reward"], 3) for h in result.log_history if "reward" in h],
            "wall_s": time.perf_counter() - started}


def _facts() -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"What is the vault code of depot {i}?"},
                          {"role": "assistant", "content": f"CODE-{(i * 37) % 10}{(i * 11) % 10}"}]}
            for i in range(48)]


def sft_ours(work: Path, steps: int, adapter: str) -> dict:
    from agentforge.finetune import finetune

    data = _write(work / "facts.jsonl", _facts())
    result = finetune({"model": "smollm2-135m", "dataset": str(data), "output_dir": str(work / "out"), "lora": LORA,
                       "adapter": adapter,
                       "max_steps": steps, "batch_size": 4, "learning_rate": 1e-3, "logging_steps": steps,
                       "save_steps": 10_000})
    return {"tokens": result.metrics["num_input_tokens_seen"], "train_s": result.metrics["train_runtime"],
            "final_loss": result.metrics["train_loss"]}


def sft_trl(work: Path, steps: int, trl_defaults: bool) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from agentforge.finetune.base import load_base

    base = load_base("smollm2-135m")  # the same float32 weights, as a transformers model, and the tokenizer
    model = AutoModelForCausalLM.from_config(base.model.config, dtype=torch.float32)
    model.load_state_dict(base.model.state_dict())
    del base.model
    fp32 = {} if trl_defaults else {"bf16": False, "gradient_checkpointing": False}
    args = SFTConfig(output_dir=str(work / "out"), max_steps=steps, per_device_train_batch_size=4, learning_rate=1e-3,
                     logging_steps=steps, save_steps=10_000, report_to=[], use_cpu=True,
                     include_num_input_tokens_seen="all", **fp32)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(_facts()),
                         processing_class=base.tokenizer,
                         peft_config=LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                                task_type="CAUSAL_LM"))
    metrics = trainer.train().metrics
    return {"tokens": metrics["num_input_tokens_seen"], "train_s": metrics["train_runtime"],
            "final_loss": metrics["train_loss"]}


def run_part(part: str, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if part.startswith("grpo"):
            result = grpo(work, part.removeprefix("grpo-"), args.grpo_steps, args.completion_tokens)
        elif part.startswith("sft-ours"):
            result = sft_ours(work, args.sft_steps, "qlora" if part.endswith("qlora") else "lora")
        else:
            result = sft_trl(work, args.sft_steps, trl_defaults=part == "sft-trl-defaults")
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grpo-steps", type=int, default=3)
    parser.add_argument("--completion-tokens", type=int, default=128)
    parser.add_argument("--sft-steps", type=int, default=12)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_part(args.child, args)), flush=True)
        return
    results = {}
    for part in args.parts:
        command = [sys.executable, __file__, "--child", part, "--grpo-steps", str(args.grpo_steps),
                   "--completion-tokens", str(args.completion_tokens), "--sft-steps", str(args.sft_steps)]
        out = subprocess.run(command, capture_output=True, text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{part}: failed\n{out.stderr[-3000:]}")
            continue
        results[part] = json.loads(line.removeprefix("RESULT "))
        print(f"{part}: {results[part]}", flush=True)
    from engine_throughput import cpu_model

    print(f"\nCPU: {cpu_model()}")
    if {"grpo-engine", "grpo-transformers"} <= results.keys():
        ours, theirs = results["grpo-engine"], results["grpo-transformers"]
        print(f"GRPO step (median, {args.grpo_steps} steps, 16 completions of <= {args.completion_tokens} tokens): "
              f"engine rollouts {ours['step_s']:.2f} s, TRL generation {theirs['step_s']:.2f} s -> "
              f"{theirs['step_s'] / ours['step_s']:.2f}x faster; of which generation {ours['generation_s']:.2f} s vs "
              f"{theirs['generation_s']:.2f} s -> {theirs['generation_s'] / ours['generation_s']:.2f}x; "
              f"peak RSS {ours['peak_rss_mb']:.0f} vs {theirs['peak_rss_mb']:.0f} MB")
    if "sft-ours" in results:
        ours = results["sft-ours"]
        rate = ours["tokens"] / ours["train_s"]
        print(f"LoRA SFT ({args.sft_steps} steps): ours {rate:.0f} tokens/s, peak RSS {ours['peak_rss_mb']:.0f} MB")
        for part in ("sft-ours-qlora", "sft-trl-defaults", "sft-trl-fp32"):
            if part in results:
                theirs = results[part]
                their_rate = theirs["tokens"] / theirs["train_s"]
                print(f"  {part}: {their_rate:.0f} tokens/s ({rate / their_rate:.2f}x ours faster), "
                      f"peak RSS {theirs['peak_rss_mb']:.0f} MB ({theirs['peak_rss_mb'] / ours['peak_rss_mb']:.2f}x ours)")


if __name__ == "__main__":
    main()
