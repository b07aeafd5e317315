"""Llama 4 text decoder (`llama4_text`, the language model of Scout and Maverick): RoPE layers with
chunked attention (keys only from the query's own block of `attention_chunk_size`), interleaved
rotary pairs and an L2 norm on queries and keys, every few layers a global NoPE layer whose queries
get a position-dependent temperature; mixture-of-experts layers whose router picks the top experts
by logit and weighs each token's input (sigmoid of the logit) before its experts, beside a shared
expert; dense layers with their own `intermediate_size_mlp`."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ACTIVATIONS, MLP, Attention, RMSNorm, apply_rotary_interleaved
from .llama import LlamaForCausalLM, LlamaModel
from .mixtral import grouped_experts


class Llama4Attention(Attention):
    def __init__(self, config, layer_idx: int) -> None:
        super().__init__(config, layer_idx, qkv_bias=config.attention_bias, o_bias=config.attention_bias)
        self.use_rope = bool(config.no_rope_layers[layer_idx])
        self.l2_norm = config.use_qk_norm and self.use_rope
        self.eps = config.rms_norm_eps
        self.temperature_tuning = config.attn_temperature_tuning and not self.use_rope

    def forward(self, hidden: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        t = hidden.shape[0]
        q, k, v = self.project(hidden)
        cos, sin, temperature = rope
        if self.use_rope:
            q, k = apply_rotary_interleaved(q, cos, sin), apply_rotary_interleaved(k, cos, sin)
        if self.l2_norm:  # an RMS norm without weights
            q, k = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) for x in (q, k))
        if self.temperature_tuning:
            q = q * temperature
        return self.o_proj(self.attn(q, k, v).view(t, -1))


class Llama4MoE(nn.Module):
    """Top-k experts by router logit; each token enters an expert scaled by sigmoid(logit), and the
    shared expert sees every token. Experts stored as transformers keeps them: [E, H, 2I], [E, I, H]."""

    def __init__(self, config) -> None:
        super().__init__()
        experts, hidden, inter = config.num_local_experts, config.hidden_size, config.intermediate_size
        self.top_k = config.num_experts_per_tok
        self.router = nn.Linear(hidden, experts, bias=False)
        self.experts = nn.Module()
        self.experts.gate_up_proj = nn.Parameter(torch.empty(experts, hidden, 2 * inter))
        self.experts.down_proj = nn.Parameter(torch.empty(experts, inter, hidden))
        self.shared_expert = MLP(hidden, inter, config.hidden_act)
        self.act = ACTIVATIONS[config.hidden_act]
        self.register_buffer("tokens_routed", torch.zeros(experts, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits, chosen = self.router(x).topk(self.top_k, dim=-1)
        self.tokens_routed += torch.bincount(chosen.flatten(), minlength=self.tokens_routed.numel())
        weights = torch.sigmoid(logits.float()).to(x.dtype)
        routed = grouped_experts(x, chosen, weights, self.experts.gate_up_proj.transpose(1, 2),
                                 self.experts.down_proj.transpose(1, 2), self.act, weigh_inputs=True)
        return routed + self.shared_expert(x)


class Llama4DecoderLayer(nn.Module):
    def __init__(self, config, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Llama4Attention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        if layer_idx in config.moe_layers:
            self.feed_forward = Llama4MoE(config)
        else:
            self.feed_forward = MLP(config.hidden_size, config.intermediate_size_mlp, config.hidden_act)

    def forward(self, hidden: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        hidden = hidden + self.self_attn(self.input_layernorm(hidden), rope)
        return hidden + self.feed_forward(self.post_attention_layernorm(hidden))


class Llama4Model(LlamaModel):
    def __init__(self, config, layers: list[nn.Module]) -> None:
        super().__init__(config, layers)
        self.floor_scale, self.attn_scale = config.floor_scale, config.attn_scale

    def position_encoding(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
        """(cos, sin, the NoPE layers' query temperature per position)."""
        temperature = torch.log1p(torch.floor((positions.float() + 1) / self.floor_scale)) * self.attn_scale + 1
        return *self.rotary_emb(positions, dtype), temperature.to(dtype)[:, None, None]


class Llama4ForCausalLM(LlamaForCausalLM):
    model_class = Llama4Model

    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        return Llama4DecoderLayer(config, layer_idx)
