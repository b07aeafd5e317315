"""PPO with a learned value function, built on TRL's GRPO trainer (TRL 1.x ships no PPO trainer).

GRPO and PPO share everything but the advantage: the rollouts (from the embedded engine, see
`rollouts.py`), the rewards, the clipped-ratio policy loss (over `ppo_epochs` passes on each batch
of samples), and the optional KL penalty to the base model. GRPO scores a completion against its
siblings' mean reward, one number for every token. PPO (Schulman et al., 2017, as applied to
language models by Ouyang et al., 2022) learns a value V(s_t) of each prefix and gives each token
its generalized advantage estimate (GAE, Schulman et al., 2016): the reward arrives at the last
token, and every earlier token is credited by how much it raised the expected return.

The value head is a linear layer over the policy's last hidden states (detached: the critic learns
from the policy's features without pulling on them), trained with the squared error against the
GAE returns, weighted by `vf_coef` (unclipped: clipping each update to ±0.2 of the sampling-time
value, as OpenAI's baselines do, keeps a zero-initialised critic far from rewards of size 1 for many
steps). It is saved with each checkpoint, so a resumed run continues with the critic it had.
"""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file, save_file
from trl import GRPOTrainer

VALUE_HEAD = "value_head.safetensors"  # in each checkpoint folder


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token advantages and returns for completions whose reward (shape `(B,)`) arrives at their
    last token; `values` and `mask` are `(B, T)`, the mask 1 on each completion's tokens from the start."""
    mask = mask.to(values.dtype)
    values = values * mask
    last = (mask.sum(1).long() - 1).clamp(min=0)
    token_rewards = torch.zeros_like(values)
    token_rewards[torch.arange(len(rewards)), last] = rewards.to(values.dtype) * (mask.sum(1) > 0)
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(rewards, dtype=values.dtype)
    for t in reversed(range(values.size(1))):
        following = values[:, t + 1] if t + 1 < values.size(1) else torch.zeros_like(running)
        running = token_rewards[:, t] + gamma * following - values[:, t] + gamma * lam * running
        advantages[:, t] = running
    advantages = advantages * mask
    return advantages, (advantages + values) * mask


def _whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum().clamp(min=1)
    mean = (x * mask).sum() / count
    std = (((x - mean) * mask) ** 2).sum().div(count).sqrt()
    return (x - mean) / (std + 1e-8) * mask


class PPOTrainer(GRPOTrainer):
    """GRPO's trainer with a value head and per-token GAE advantages in place of group-relative ones."""

    def __init__(self, *args, gae_lambda: float, vf_coef: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gae_lambda, self.vf_coef = gae_lambda, vf_coef
        model = self.accelerator.unwrap_model(self.model)
        model = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.backbone = model.base_model  # what TRL's fused LM head runs before projecting
        self.value_head = torch.nn.Linear(model.config.get_text_config().hidden_size, 1, device=self.accelerator.device)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)
        self._hidden: list[torch.Tensor] | None = None  # the backbone's outputs while the loss is computed
        self.backbone.register_forward_hook(self._keep_hidden)
        self._rewards: torch.Tensor | None = None

    def _keep_hidden(self, module, args, output) -> None:
        if self._hidden is not None:
            self._hidden.append(output.last_hidden_state)

    def _values(self, hidden: torch.Tensor, completion_length: int) -> torch.Tensor:
        """V of the prefix before each completion token (the state it is sampled from)."""
        return self.value_head(hidden[:, -completion_length - 1:-1].detach().float()).squeeze(-1)

    def create_optimizer(self, *args, **kwargs):
        """The policy's optimizer also steps the value head; the trainer zeroes only the model's
        gradients, so the head's are cleared after each step."""
        optimizer = super().create_optimizer(*args, **kwargs)
        optimizer.add_param_group({"params": list(self.value_head.parameters()), "weight_decay": 0.0})
        optimizer.register_step_post_hook(lambda *_: self.value_head.zero_grad(set_to_none=True))
        return optimizer

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rewards = rewards_per_func
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        per_func = self._rewards
        scorable = ~torch.isnan(per_func).all(dim=1)
        rewards = (per_func * self.reward_weights.to(per_func.device).unsqueeze(0)).nansum(dim=1)
        count = len(output["completion_ids"])
        local = slice(self.accelerator.process_index * count, (self.accelerator.process_index + 1) * count)
        rewards, scorable = rewards[local], scorable[local]
        completion_ids, mask = output["completion_ids"], output["completion_mask"].float()
        with torch.no_grad():
            hidden = self.backbone(input_ids=torch.cat([output["prompt_ids"], completion_ids], dim=1),
                                   attention_mask=torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1),
                                   use_cache=False).last_hidden_state
            values = self._values(hidden, completion_ids.size(1)) * mask
        advantages, returns = gae(rewards, values, mask, lam=self.gae_lambda)
        mask = mask * scorable[:, None]  # a completion no reward could score teaches nothing
        output.update(advantages=_whiten(advantages, mask), returns=returns, value_mask=mask)
        return output

    def _compute_loss(self, model, inputs):
        self._hidden = []
        try:
            policy_loss = super()._compute_loss(model, inputs)
            hidden = torch.cat(self._hidden)
        finally:
            self._hidden = None
        values = self._values(hidden, inputs["completion_ids"].size(1))
        returns, mask = inputs["returns"], inputs["value_mask"]
        value_loss = 0.5 * ((values - returns) ** 2 * mask).sum() / mask.sum().clamp(min=1)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["value_loss"].append(value_loss.item())
        return policy_loss + self.vf_coef * value_loss

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
            save_file({k: v.detach().contiguous() for k, v in self.value_head.state_dict().items()},
                      os.path.join(folder, VALUE_HEAD))

    def _load_optimizer_and_scheduler(self, checkpoint):
        if checkpoint is not None and os.path.exists(os.path.join(checkpoint, VALUE_HEAD)):
            self.value_head.load_state_dict(load_file(os.path.join(checkpoint, VALUE_HEAD)))
        super()._load_optimizer_and_scheduler(checkpoint)
