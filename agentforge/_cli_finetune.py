"""`agentforge finetune`: train from a YAML config, write tool-calling data, merge an adapter,
export GGUF."""

from __future__ import annotations

import argparse


def add_commands(commands) -> None:
    finetune = commands.add_parser("finetune", help="fine-tune a model (SFT, LoRA/QLoRA, DPO, KTO, GRPO) from one YAML config")
    sub = finetune.add_subparsers(dest="finetune_command", metavar="FINETUNE_COMMAND", required=True)
    run = sub.add_parser("run", help="train as a config file says (resumes from the last checkpoint)")
    run.add_argument("config", help="a YAML file of FinetuneConfig settings")
    data = sub.add_parser("tool-data", help="write made-up tool-calling conversations as OpenAI-format JSONL")
    data.add_argument("--rows", type=int, default=320)
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--out", required=True, help="the JSONL file to write")
    merge = sub.add_parser("merge", help="fold a LoRA adapter into its base: a Hugging Face folder")
    merge.add_argument("adapter", help="the adapter folder")
    merge.add_argument("output", help="the folder to write")
    export = sub.add_parser("export-gguf", help="write a merged Llama-family folder as a GGUF file")
    export.add_argument("model", help="the merged folder")
    export.add_argument("output", help="the .gguf file to write")
    export.add_argument("--base", required=True, help="the base model's alias or GGUF file (its tokenizer is reused)")
    export.add_argument("--dtype", default="f32", choices=["f32", "f16"])


def run(args: argparse.Namespace) -> int:
    from agentforge.finetune import finetune, merge_adapter
    from agentforge.finetune.tool_data import write_tool_call_data

    if args.finetune_command == "export-gguf":
        from agentforge.finetune.gguf_export import export_gguf

        print(f"wrote {export_gguf(args.model, args.output, args.base, args.dtype)}")
    elif args.finetune_command == "tool-data":
        print(f"wrote {write_tool_call_data(args.out, args.rows, args.seed)}")
    elif args.finetune_command == "merge":
        print(f"wrote {merge_adapter(args.adapter, args.output)}")
    else:
        result = finetune(args.config)
        print(f"trained on {result.train_rows} rows: {result.output}" + (f", merged: {result.merged}" if result.merged else ""))
        for problem in result.skipped:
            print(f"skipped {problem}")
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.metrics.items()})
    return 0
