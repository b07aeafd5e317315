"""Hunyuan dense and MoE (`hunyuan_v1_dense`, `hunyuan_v1_moe`): Llama's decoder with per-head RMS
norms on queries and keys applied after the rotary embedding (Qwen3 applies them before), named
query/key_layernorm; the MoE variant's feed-forward is a plain shared MLP plus top-k routed experts."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ACTIVATIONS, MLP, Attention, RMSNorm, apply_rotary
from .llama import DecoderLayer, LlamaForCausalLM
from .mixtral import grouped_experts, route


class HunYuanAttention(Attention):
    def __init__(self, config, layer_idx: int) -> None:
        super().__init__(config, layer_idx, qkv_bias=config.attention_bias, o_bias=config.attention_bias)
        self.query_layernorm = RMSNorm(self.head_dim, config.rms_norm_eps)
        self.key_layernorm = RMSNorm(self.head_dim, config.rms_norm_eps)

    def forward(self, hidden: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        t = hidden.shape[0]
        q, k, v = self.project(hidden)
        cos, sin = cos_sin
        q, k = self.query_layernorm(apply_rotary(q, cos, sin)), self.key_layernorm(apply_rotary(k, cos, sin))
        return self.o_proj(self.attn(q, k, v).view(t, -1))


class HunYuanDenseV1ForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        mlp = MLP(config.hidden_size, config.intermediate_size, config.hidden_act, getattr(config, "mlp_bias", False))
        return DecoderLayer(config, HunYuanAttention(config, layer_idx), mlp)


class HunYuanMoE(nn.Module):
    """Every token through the shared MLP and its top-k experts (softmax over all experts, the k kept
    rescaled to sum to 1); the router (`gate.wg`) scores in float32, as Hunyuan's does. `num_experts`
    and `moe_topk` may be given per layer."""

    def __init__(self, config, layer_idx: int) -> None:
        super().__init__()
        experts, self.top_k = (v if isinstance(v, int) else v[layer_idx] for v in (config.num_experts, config.moe_topk))
        hidden, inter = config.hidden_size, config.intermediate_size
        self.gate = nn.Module()
        self.gate.wg = nn.Linear(hidden, experts, bias=False)
        self.experts = nn.Module()
        self.experts.gate_up_proj = nn.Parameter(torch.empty(experts, 2 * inter, hidden))
        self.experts.down_proj = nn.Parameter(torch.empty(experts, hidden, inter))
        self.shared_mlp = MLP(hidden, inter, config.hidden_act)
        self.act = ACTIVATIONS[config.hidden_act]
        self.register_buffer("tokens_routed", torch.zeros(experts, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = F.linear(x.float(), self.gate.wg.weight.float())
        weights, chosen = route(logits, self.top_k, True, self.tokens_routed)
        routed = grouped_experts(x, chosen, weights.to(x.dtype), self.experts.gate_up_proj, self.experts.down_proj,
                                 self.act)
        return routed + self.shared_mlp(x)


class HunYuanMoEV1ForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        return DecoderLayer(config, HunYuanAttention(config, layer_idx), HunYuanMoE(config, layer_idx))
