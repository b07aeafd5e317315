"""Mixtral-style sparse mixture of experts: a router picks the top-k experts of every token."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import ACTIVATIONS, Attention
from .llama import DecoderLayer, LlamaForCausalLM


class SparseMoeBlock(nn.Module):
    """Experts stored as 3-D tensors, as in transformers 5: gate_up_proj [E, 2I, H], down_proj [E, H, I]."""

    def __init__(self, config) -> None:
        super().__init__()
        self.top_k = config.num_experts_per_tok
        experts, hidden, inter = config.num_local_experts, config.hidden_size, config.intermediate_size
        self.gate = nn.Linear(hidden, experts, bias=False)
        self.experts = nn.Module()
        self.experts.gate_up_proj = nn.Parameter(torch.empty(experts, 2 * inter, hidden))
        self.experts.down_proj = nn.Parameter(torch.empty(experts, hidden, inter))
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(self.gate(x).float(), dim=-1)
        weights, chosen = torch.topk(probs, self.top_k, dim=-1)
        weights = (weights / weights.sum(dim=-1, keepdim=True)).to(x.dtype)
        out = torch.zeros_like(x)
        for expert in chosen.unique().tolist():
            token, slot = torch.where(chosen == expert)
            gate, up = (x[token] @ self.experts.gate_up_proj[expert].T).chunk(2, dim=-1)
            y = (self.act(gate) * up) @ self.experts.down_proj[expert].T
            out.index_add_(0, token, y * weights[token, slot, None])
        return out


class MixtralForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        return DecoderLayer(config, Attention(config, layer_idx), SparseMoeBlock(config))
