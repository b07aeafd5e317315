"""Regenerate the tool-calling data and retrain the tool-calling LoRA adapter shipped for SmolLM2.

    python bench/train_tool_adapter.py [--rows 320] [--seed 0] [--work build/tool-adapter]

The data are made-up functions and questions (`agentforge.finetune.tool_data`), rendered with the
engine's Hermes tool prompt; the adapter is saved in float16 to
`engine/adapters/smollm2-135m-tools/`, where the engine finds it (`EngineConfig.tool_adapter`).
Measure it against the base model in one run: `bench/bfcl.py --tool-adapters none auto` and
`bench/agent_tasks.py --tool-adapters none auto`; another adapter (the one it replaced, say) is
compared in the same run by naming its folder among the adapters.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from safetensors.torch import load_file, save_file

from agentforge.finetune import finetune
from agentforge.finetune.tool_data import write_tool_call_data

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "engine" / "adapters" / "smollm2-135m-tools"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=str(ROOT / "build" / "tool-adapter"))
    args = parser.parse_args()
    work = Path(args.work)
    data = write_tool_call_data(work / "tool_calls.jsonl", args.rows, args.seed)
    started = time.time()
    result = finetune({
        "model": "smollm2-135m", "dataset": str(data), "output_dir": str(work / "run"), "tool_format": "hermes",
        "lora": {"r": 16, "alpha": 32, "dropout": 0.0}, "epochs": 1, "batch_size": 1, "gradient_accumulation_steps": 8,
        "learning_rate": 1e-3, "lr_scheduler": "cosine", "warmup": 0.1, "max_length": 1024, "seed": args.seed,
        "logging_steps": 5, "save_steps": 10,
    })
    print(f"trained on {result.train_rows} rows in {time.time() - started:.0f} s: {result.metrics}")
    TARGET.mkdir(parents=True, exist_ok=True)
    weights = load_file(str(result.output / "adapter_model.safetensors"))
    save_file({k: v.half() for k, v in weights.items()}, str(TARGET / "adapter_model.safetensors"))
    shutil.copy(result.output / "adapter_config.json", TARGET)
    meta = json.loads((result.output / "agentforge.json").read_text())
    meta.update(tool_calling=True, dataset=f"agentforge.finetune.tool_data, {args.rows} rows, seed {args.seed}",
                recipe="python bench/train_tool_adapter.py")
    (TARGET / "agentforge.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"saved {TARGET}")


if __name__ == "__main__":
    main()
