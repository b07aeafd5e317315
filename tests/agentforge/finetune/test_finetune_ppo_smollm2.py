"""PPO on SmolLM2-135M with rollouts from the engine raises held-out reward on the task GRPO is
measured on (one-digit sums within a 12-token budget, checked by a verifier)."""

import random

import pytest
from test_finetune_grpo_smollm2 import _rows, correct

from agentforge.engine import LLM, SamplingParams
from agentforge.finetune import finetune

pytestmark = pytest.mark.slow


def test_ppo_raises_held_out_reward_on_sums(smollm2_path, tmp_path, write_jsonl):
    pairs = [(a, b) for a in range(1, 10) for b in range(1, 10)]
    random.Random(0).shuffle(pairs)
    train, held_out = _rows(pairs[:64]), _rows(pairs[64:])
    result = finetune({"method": "ppo", "model": smollm2_path, "dataset": str(write_jsonl(tmp_path / "t.jsonl", train)),
                       "output_dir": str(tmp_path / "out"), "rewards": [correct], "num_generations": 8,
                       "batch_size": 16, "max_completion_length": 12, "temperature": 0.7, "ppo_epochs": 2,
                       "max_steps": 16, "learning_rate": 1e-3, "logging_steps": 4, "lora": {"r": 16, "dropout": 0.0}})

    llm = LLM(smollm2_path, tool_adapter=None, lora_adapters={"sums": str(result.output)})
    conversations = [[{"role": "user", "content": row["prompt"]}] for row in held_out]

    def held_out_reward(lora, temperature, n):
        outputs = llm.chat(conversations, SamplingParams(temperature=temperature, n=n, max_tokens=12, lora=lora, seed=5))
        return sum(correct(o.text, row["answer"]) for out, row in zip(outputs, held_out) for o in out.outputs) / (n * len(held_out))

    sampled = held_out_reward(None, 0.7, 8), held_out_reward("sums", 0.7, 8)
    greedy = held_out_reward(None, 0, 1), held_out_reward("sums", 0, 1)
    print(f"PPO: held-out reward on {len(held_out)} unseen sums, sampled (T=0.7, 8 each): {sampled[0]:.3f} -> "
          f"{sampled[1]:.3f}, greedy: {greedy[0]:.3f} -> {greedy[1]:.3f}; training reward and value loss by interval: "
          f"{[(round(h['reward'], 3), round(h['value_loss'], 3)) for h in result.log_history if 'reward' in h]}; "
          f"{result.metrics['train_runtime']:.0f} s")
    assert sampled[1] >= sampled[0] + 0.3
    assert greedy[1] > greedy[0]
