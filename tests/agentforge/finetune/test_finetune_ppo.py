"""PPO (`ppo.py`): GAE's per-token credit, a value head that learns and survives a resume, and its
settings checked up front. The real-model run is in test_finetune_ppo_smollm2.py.
(A resumed run's prompts come in another order than an uninterrupted run's — TRL's sampler — so
its steps are compared by what the critic knows, not weight by weight.)"""

import shutil

import pytest
import torch
from safetensors.torch import load_file

from agentforge.finetune import ConfigError, FinetuneConfig, finetune
from agentforge.finetune.ppo import VALUE_HEAD, gae


def test_gae_credits_each_token_with_what_it_added_to_the_expected_return():
    rewards = torch.tensor([1.0, -2.0, 5.0])
    values = torch.tensor([[0.5, 0.25, 0.75, 9.0], [0.1, 0.2, 0.3, 0.4], [7.0, 7.0, 7.0, 7.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    lam = 0.9
    advantages, returns = gae(rewards, values, mask, lam=lam)
    for row in range(2):  # the textbook recursion, one token at a time (gamma 1)
        n = int(mask[row].sum())
        v = values[row, :n].tolist() + [0.0]
        r = [0.0] * (n - 1) + [rewards[row].item()]
        expected, running = [], 0.0
        for t in reversed(range(n)):
            running = r[t] + v[t + 1] - v[t] + lam * running
            expected.insert(0, running)
        torch.testing.assert_close(advantages[row, :n], torch.tensor(expected))
        torch.testing.assert_close(returns[row, :n], torch.tensor(expected) + values[row, :n])
    assert advantages[0, 3] == returns[0, 3] == 0  # padding after the end gets nothing
    assert not advantages[2].any() and not returns[2].any()  # nor does an empty completion
    monte_carlo, _ = gae(rewards, values, mask, lam=1.0)  # lambda 1: the return minus the baseline
    torch.testing.assert_close(monte_carlo[0, :3], rewards[0] - values[0, :3])


def test_ppo_learns_values_on_engine_rollouts_and_resumes_with_its_critic(tiny_llama_dir, tmp_path, write_jsonl):
    data = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"Tell me about topic {i}.", "topic": i} for i in range(8)])

    def flat(completion, topic):  # every completion scores 1: the values to learn are known
        return 1.0

    settings = {"method": "ppo", "model": str(tiny_llama_dir), "dataset": str(data), "output_dir": str(tmp_path / "out"),
                "rewards": [flat], "num_generations": 2, "batch_size": 8, "max_completion_length": 8,
                "ppo_epochs": 2, "max_steps": 6, "save_steps": 2, "save_total_limit": 3, "learning_rate": 1e-2, "lr_scheduler": "constant",
                "logging_steps": 1, "lora": {"r": 4, "dropout": 0.0}}
    result = finetune(settings)
    value_losses = {h["step"]: h["value_loss"] for h in result.log_history if "value_loss" in h}
    zero_critic = value_losses[1]  # the head starts at zero: its first loss is a zero critic's
    assert len(value_losses) == 6 and value_losses[6] < 0.6 * zero_critic
    out = tmp_path / "out"
    assert load_file(str(out / "checkpoint-6" / VALUE_HEAD))["weight"].abs().sum() > 0

    shutil.rmtree(out / "checkpoint-6")  # as if killed after the checkpoint at step 4
    shutil.rmtree(out / "adapter")
    resumed = finetune(settings)
    after = {h["step"]: h["value_loss"] for h in resumed.log_history if "value_loss" in h and h["step"] > 4}
    assert sorted(after) == [5, 6]  # it went on from step 4 ...
    assert after[5] < 0.8 * zero_critic  # ... with the critic it had, not a new one


@pytest.mark.parametrize("settings, message", [
    ({"method": "ppo"}, "method 'ppo' needs at least one reward"),
    ({"method": "ppo", "rewards": ["m:f"], "batch_size": 6, "num_generations": 4}, "multiple of num_generations"),
    ({"method": "grpo", "rewards": ["m:f"], "vf_coef": 0.5}, "vf_coef are for method 'ppo'"),
    ({"method": "sft", "ppo_epochs": 2, "gae_lambda": 0.9}, "gae_lambda, ppo_epochs are for method 'ppo'"),
    ({"method": "ppo", "rewards": ["m:f"], "gae_lambda": 1.5}, "gae_lambda"),
    ({"method": "ppo", "rewards": ["m:f"], "ppo_epochs": 0}, "ppo_epochs"),
])
def test_ppo_settings_are_checked_up_front(tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        FinetuneConfig.of({"dataset": "d.jsonl", "output_dir": str(tmp_path), **settings})
