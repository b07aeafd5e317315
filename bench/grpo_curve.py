"""A longer GRPO run's held-out reward curve: SmolLM2-135M on one-digit sums (the slow test's task),
rollouts from the engine, a checkpoint every `--every` steps; then every checkpoint's adapter is
loaded into one engine side by side (multi-LoRA) and the held-out sums are answered by all of them in
one batch, sampled (T=0.7, 8 each) and greedy.

    python bench/grpo_curve.py [--steps 40] [--every 10]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from finetune import correct

from agentforge.engine import LLM, SamplingParams
from agentforge.finetune import finetune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    pairs = [(a, b) for a in range(1, 10) for b in range(1, 10)]
    random.Random(0).shuffle(pairs)
    rows = [{"prompt": f"What is {a} + {b}?", "answer": a + b} for a, b in pairs]
    train, held_out = rows[:64], rows[64:]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train))
        started = time.perf_counter()
        result = finetune({"method": "grpo", "model": "smollm2-135m", "dataset": str(work / "sums.jsonl"),
                           "output_dir": str(work / "out"), "rewards": [correct], "num_generations": 8,
                           "batch_size": 16, "max_completion_length": 12, "temperature": 0.7,
                           "max_steps": args.steps, "learning_rate": 1e-3, "logging_steps": args.every,
                           "save_steps": args.every, "save_total_limit": args.steps // args.every + 1,
                           "lora": {"r": 16, "dropout": 0.0}})
        seconds = time.perf_counter() - started
        checkpoints = {f"step{p.name.split('-')[1]}": str(p) for p in (work / "out").glob("checkpoint-*")}
        llm = LLM("smollm2-135m", tool_adapter=None, lora_adapters=checkpoints)
        conversations = [[{"role": "user", "content": row["prompt"]}] for row in held_out]
        print(f"{args.steps} GRPO steps in {seconds:.0f} s; training reward per {args.every} steps: "
              f"{[round(h['reward'], 3) for h in result.log_history if 'reward' in h]}")
        names = ["base", *sorted(checkpoints, key=lambda n: int(n[4:]))]
        table = {name: [] for name in names}
        for temperature, n in ((0.7, 8), (0, 1)):  # every adapter's requests in one continuous batch
            params = [SamplingParams(temperature=temperature, n=n, max_tokens=12, seed=5,
                                     lora=None if name == "base" else name) for name in names for _ in held_out]
            outputs = llm.chat(conversations * len(names), params)
            for i, name in enumerate(names):
                mine = zip(outputs[i * len(held_out):(i + 1) * len(held_out)], held_out)
                table[name].append(sum(correct(o.text, row["answer"]) for out, row in mine for o in out.outputs)
                                   / (n * len(held_out)))
        print("| step | held-out reward, sampled (T=0.7, 8 each) | greedy |\n|---|---|---|")
        for name in names:
            print(f"| {0 if name == 'base' else name[4:]} | {table[name][0]:.3f} | {table[name][1]:.3f} |")


if __name__ == "__main__":
    main()
