"""Run one peer engine on a workload, inside the peer's own virtual environment (see
`install_peers.sh`): no agentforge import here. Reads a JSON job from argv[1], prints one line
`RESULT {"seconds": ..., "tokens": ...}` with the wall time of generation alone (model loading excluded).

Jobs: {"engine": "vllm", "model": HF folder, "dtype", "prompts": [[ids]], "out_tokens"}
      {"engine": "llama", "model": GGUF file, "threads", "prompts": [[ids]], "out_tokens"}
"""

import json
import os
import sys
import time


def run_vllm(job: dict) -> tuple[float, int]:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "4")
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    llm = LLM(job["model"], dtype=job["dtype"], max_model_len=2048, seed=0)
    params = SamplingParams(temperature=0, max_tokens=job["out_tokens"], ignore_eos=True)
    llm.generate([TokensPrompt(prompt_token_ids=job["prompts"][0][:16])], SamplingParams(max_tokens=4))  # warm-up
    start = time.perf_counter()
    outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in job["prompts"]], params)
    return time.perf_counter() - start, sum(len(o.outputs[0].token_ids) for o in outs)


def run_llama(job: dict) -> tuple[float, int]:
    from llama_cpp import Llama

    llm = Llama(job["model"], n_ctx=2048, n_batch=512, n_threads=job["threads"], n_threads_batch=job["threads"],
                verbose=False)
    tokens = 0
    start = time.perf_counter()
    for prompt in job["prompts"]:  # llama-cpp-python serves one request at a time
        llm.reset()
        for n, _ in enumerate(llm.generate(prompt, temp=0.0), 1):  # generate() ignores EOS: we stop it
            if n == job["out_tokens"]:
                break
        tokens += n
    return time.perf_counter() - start, tokens


if __name__ == "__main__":
    job = json.loads(open(sys.argv[1]).read())
    seconds, tokens = {"vllm": run_vllm, "llama": run_llama}[job["engine"]](job)
    print("RESULT " + json.dumps({"seconds": seconds, "tokens": tokens}), flush=True)
