"""GRPO's samples from the embedded engine instead of `model.generate`: what TRL does with vLLM on a
GPU, here on a CPU. One engine holds the base weights; before each generation the policy's current
LoRA pairs are synced into it as the adapter "policy" (a copy of a few MB; a full fine-tune copies
every parameter), then all of a step's prompts × `num_generations` samples run in one continuous
batch over the paged KV cache, each prompt's blocks computed once and shared by its samples through
the prefix cache.
"""

from __future__ import annotations

import torch

from agentforge.engine import LLM, SamplingParams
from agentforge.engine.lora import adapter_from_tensors

from .config import FinetuneConfig

POLICY = "policy"


class EngineRollouts:
    """TRL's `rollout_func` on the embedded engine, for `GRPOTrainer(rollout_func=...)`."""

    def __init__(self, model_path, model_config, config: FinetuneConfig, max_prompt_tokens: int | None = None) -> None:
        self.config = config
        group = config.batch_size * config.gradient_accumulation_steps
        tokens = group * ((max_prompt_tokens or config.max_length) + config.max_completion_length)
        per_token = 2 * model_config.num_hidden_layers * _kv_heads(model_config) * _head_dim(model_config) * 4
        self.llm = LLM(str(model_path), dtype="float32", tool_adapter=None, max_num_seqs=max(group, 8),
                       kv_cache_bytes=min(max(tokens * per_token, 32 << 20), 2 << 30))
        self.synced_step: int | None = None

    def sync(self, model) -> None:
        """Copy the policy's current weights into the engine."""
        engine = self.llm.engine
        if hasattr(model, "peft_config"):
            from peft import get_peft_model_state_dict

            settings = model.peft_config["default"].to_dict()
            adapter = adapter_from_tensors(POLICY, get_peft_model_state_dict(model), settings, engine.model,
                                           torch.float32)
            if POLICY in engine.loras:
                engine.unload_lora(POLICY)
            engine.load_lora(POLICY, adapter)  # a new adapter id: no stale KV from the old weights is reused
        else:
            engine.load_weights({name: p.detach() for name, p in model.named_parameters()})

    def __call__(self, prompts: list[str], trainer) -> dict:
        """Sample completions for TRL's batch, in which each prompt comes `num_generations` times in a row."""
        if trainer.state.global_step != self.synced_step:
            self.sync(trainer.model)
            self.synced_step = trainer.state.global_step
        training = trainer.model.training
        n = trainer.num_generations if training else trainer.num_generations_eval
        unique = prompts[::n]
        if [p for p in unique for _ in range(n)] != list(prompts):
            raise ValueError(f"expected each prompt {n} times in a row (GRPO's sampler), got another order")
        tokenizer = self.llm.tokenizer
        prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in unique]
        params = SamplingParams(n=n, temperature=self.config.temperature, top_p=self.config.top_p,
                                max_tokens=self.config.max_completion_length, logprobs=0,
                                seed=(self.config.seed * 1_000_003 + trainer.state.global_step) * 2 + (not training),
                                lora=POLICY if POLICY in self.llm.engine.loras else None)
        outputs = self.llm.generate(prompt_ids, params)
        result = {"prompt_ids": [], "completion_ids": [], "logprobs": []}
        for out in outputs:
            for completion in out.outputs:
                result["prompt_ids"].append(list(out.prompt_token_ids))
                result["completion_ids"].append(list(completion.token_ids))
                result["logprobs"].append([lp.logprob for lp in completion.logprobs])
        return result


def _kv_heads(config) -> int:
    return getattr(config, "num_key_value_heads", None) or config.num_attention_heads


def _head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
