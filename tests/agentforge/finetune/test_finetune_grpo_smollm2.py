"""GRPO on SmolLM2-135M with rollouts from the engine raises held-out reward on a verifiable task
(one-digit sums within a 12-token budget, checked by a verifier), and an LLM judge on the embedded model always parses."""

import random
import re

import pytest

from agentforge.engine import LLM, SamplingParams
from agentforge.finetune import finetune
from agentforge.finetune.rewards import llm_judge

pytestmark = pytest.mark.slow


def correct(completion, answer):
    """The last number in the reply is the sum."""
    numbers = re.findall(r"-?\d+", completion)
    return bool(numbers) and int(numbers[-1]) == answer


def _rows(pairs):
    return [{"prompt": f"What is {a} + {b}?", "answer": a + b} for a, b in pairs]


def train_on_sums(smollm2_path, tmp_path, write_jsonl, **settings):
    """Train on 64 one-digit sums with the verifier as reward; the held-out reward of the other 17,
    sampled (T=0.7, 8 each) and greedy, each as (base, trained), within the 12-token budget as in training."""
    pairs = [(a, b) for a in range(1, 10) for b in range(1, 10)]
    random.Random(0).shuffle(pairs)
    train, held_out = _rows(pairs[:64]), _rows(pairs[64:])
    result = finetune({"model": smollm2_path, "dataset": str(write_jsonl(tmp_path / "t.jsonl", train)),
                       "output_dir": str(tmp_path / "out"), "rewards": [correct], "num_generations": 8,
                       "batch_size": 16, "max_completion_length": 12, "temperature": 0.7, "learning_rate": 1e-3,
                       "logging_steps": 4, "lora": {"r": 16, "dropout": 0.0}, **settings})

    llm = LLM(smollm2_path, tool_adapter=None, lora_adapters={"sums": str(result.output)})
    conversations = [[{"role": "user", "content": row["prompt"]}] for row in held_out]

    def held_out_reward(lora, temperature, n):
        outputs = llm.chat(conversations, SamplingParams(temperature=temperature, n=n, max_tokens=12, lora=lora, seed=5))
        return sum(correct(o.text, row["answer"]) for out, row in zip(outputs, held_out) for o in out.outputs) / (n * len(held_out))

    sampled = held_out_reward(None, 0.7, 8), held_out_reward("sums", 0.7, 8)
    greedy = held_out_reward(None, 0, 1), held_out_reward("sums", 0, 1)
    return result, sampled, greedy


def test_grpo_raises_held_out_reward_on_sums(smollm2_path, tmp_path, write_jsonl):
    result, sampled, greedy = train_on_sums(smollm2_path, tmp_path, write_jsonl, method="grpo", max_steps=10)
    print(f"held-out reward on 17 unseen sums, sampled (T=0.7, 8 each): {sampled[0]:.3f} -> {sampled[1]:.3f}, "
          f"greedy: {greedy[0]:.3f} -> {greedy[1]:.3f}; training reward by step: "
          f"{[round(h['reward'], 3) for h in result.log_history if 'reward' in h]}")
    assert sampled[1] >= sampled[0] + 0.3
    assert greedy[1] > greedy[0]


def test_an_llm_judge_on_the_embedded_model_always_parses(smollm2_path):
    judge = llm_judge("Full marks for a correct and polite answer.", model=smollm2_path)
    prompts = ["What is 2 + 2?", "Name a colour.", "Say hello.", "What is the capital of France?"]
    completions = ["4", "Blue, of course!", "", "I refuse to answer questions like that, and " * 20]
    scores = judge(prompts, completions)
    assert len(scores) == 4 and all(isinstance(s, float) and 0 <= s <= 1 for s in scores)
