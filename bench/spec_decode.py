"""Speculative decoding with n-gram drafts: output tokens/s with and without, same requests, same
run, at several batch sizes, and how many drafted tokens were kept.

Two workloads on SmolLM2-135M-Instruct (chat template, greedy, up to 128 output tokens):
- "copy": answers that copy their context — quote a passage, repeat a list, fix a bug in given
  code, fill a JSON record from a given text (where prompt lookup pays off);
- "chat": open questions whose answers copy little.
Each batch size runs the same prompts through a plain engine and one with `speculative_tokens`
(drafting allowed at every batch size here, to show where it stops paying off); outputs are
checked to be identical.

    python bench/spec_decode.py [--tokens 5] [--batches 1 4 16] [--dtype float32]
"""

from __future__ import annotations

import argparse
import os
import time

from agentforge.engine import LLM, SamplingParams

PASSAGE = ("The paged KV cache keeps keys and values in fixed-size blocks. Blocks are shared between "
           "requests that start with the same tokens, and freed blocks stay cached until they are evicted, "
           "least recently used first. When memory runs out, the newest request is preempted and recomputed.")
CODE = "def mean(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total / len(x)\n"
COPY = [
    f"Here is a passage:\n{PASSAGE}\nQuote the passage word for word.",
    f"Here is a passage:\n{PASSAGE}\nWhat happens when memory runs out? Answer with the sentence from the passage.",
    f"This function has a bug:\n{CODE}\nFix the bug and show the whole corrected function.",
    "Repeat this list exactly: apples, pears, plums, cherries, grapes, lemons, limes, oranges, figs, dates.",
    'Fill this JSON record from the text. Text: "Ada Lovelace, born 1815 in London, mathematician." '
    'Record: {"name": "", "born": 0, "city": "", "job": ""}',
    f"Summarise this passage in two sentences, reusing its words:\n{PASSAGE}",
    "Translate to French, then repeat the English: The cat sleeps on the warm windowsill all afternoon.",
    f"Here is some code:\n{CODE}\nRename the function to average and show the full code.",
]
CHAT = [
    "Why is the sky blue?", "Give me three tips for better sleep.", "What does a CPU do?",
    "Write a haiku about autumn.", "How do vaccines work?", "Name three rivers in Europe.",
    "What is the difference between a list and a tuple in Python?", "Explain photosynthesis simply.",
]


def run(llm: LLM, conversations: list, params: SamplingParams) -> tuple[float, list]:
    start = time.perf_counter()
    outs = [o.outputs[0] for o in llm.chat(conversations, params)]  # one continuous batch
    return time.perf_counter() - start, outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=5, help="speculative_tokens")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; dtype {args.dtype}; speculative_tokens {args.tokens}")
    params = SamplingParams(temperature=0, max_tokens=128)
    plain = LLM("smollm2-135m", dtype=args.dtype)
    spec = LLM("smollm2-135m", dtype=args.dtype, speculative_tokens=args.tokens, speculative_max_seqs=1024)
    for llm in (plain, spec):  # warm-up
        run(llm, [[{"role": "user", "content": "Hi"}]], SamplingParams(max_tokens=4))
    print("| workload | batch | plain tok/s | speculative tok/s | speed-up | drafts kept |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, prompts in (("copy", COPY), ("chat", CHAT)):
        for batch in args.batches:
            conversations = [[{"role": "user", "content": prompts[i % len(prompts)]}] for i in range(max(batch, 8))]
            groups = [conversations[i : i + batch] for i in range(0, len(conversations), batch)]
            plain_time = spec_time = 0.0
            tokens = 0
            drafted, kept = spec.stats().counters.num_draft_tokens, spec.stats().counters.num_accepted_tokens
            for group in groups:
                t_plain, a = run(plain, group, params)
                t_spec, b = run(spec, group, params)
                assert [o.token_ids for o in a] == [o.token_ids for o in b], "speculative output differs"
                plain_time, spec_time = plain_time + t_plain, spec_time + t_spec
                tokens += sum(len(o.token_ids) for o in a)
            drafted, kept = spec.stats().counters.num_draft_tokens - drafted, spec.stats().counters.num_accepted_tokens - kept
            print(f"| {name} | {batch} | {tokens / plain_time:.1f} | {tokens / spec_time:.1f} | "
                  f"{plain_time / spec_time:.2f}× | {kept}/{drafted} ({kept / max(drafted, 1):.0%}) |")


if __name__ == "__main__":
    main()
