"""Sparse mixtures of experts: a router picks the top-k experts of every token (Mixtral, Qwen3-MoE),
optionally beside an always-on shared expert (Qwen2-MoE)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import ACTIVATIONS, MLP, Attention
from .llama import DecoderLayer, LlamaForCausalLM


class SparseMoeBlock(nn.Module):
    """Experts stored as 3-D tensors, as in transformers 5: gate_up_proj [E, 2I, H], down_proj [E, H, I].
    `normalize` rescales the top-k probabilities to sum to 1 (Mixtral always; Qwen's `norm_topk_prob`)."""

    def __init__(self, hidden: int, experts: int, inter: int, top_k: int, activation: str, *, normalize: bool = True,
                 shared_inter: int = 0) -> None:
        super().__init__()
        self.top_k, self.normalize = top_k, normalize
        self.gate = nn.Linear(hidden, experts, bias=False)
        self.experts = nn.Module()
        self.experts.gate_up_proj = nn.Parameter(torch.empty(experts, 2 * inter, hidden))
        self.experts.down_proj = nn.Parameter(torch.empty(experts, hidden, inter))
        self.act = ACTIVATIONS[activation]
        # tokens routed to each expert since load: the engine's expert load statistics (/metrics)
        self.register_buffer("tokens_routed", torch.zeros(experts, dtype=torch.long), persistent=False)
        if shared_inter:  # Qwen2-MoE: a dense expert every token goes through, scaled by a sigmoid gate
            self.shared_expert = MLP(hidden, shared_inter, activation)
            self.shared_expert_gate = nn.Linear(hidden, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights, chosen = route(self.gate(x).float(), self.top_k, self.normalize, self.tokens_routed)
        out = grouped_experts(x, chosen, weights.to(x.dtype), self.experts.gate_up_proj, self.experts.down_proj, self.act)
        if hasattr(self, "shared_expert"):
            out = out + torch.sigmoid(self.shared_expert_gate(x)) * self.shared_expert(x)
        return out


def route(logits: torch.Tensor, top_k: int, normalize: bool, tokens_routed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each token's top-k experts and their softmax probabilities (rescaled to sum to 1 if
    `normalize`), counted into `tokens_routed`."""
    weights, chosen = torch.topk(torch.softmax(logits, dim=-1), top_k, dim=-1)
    if normalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    tokens_routed += torch.bincount(chosen.flatten(), minlength=tokens_routed.numel())
    return weights, chosen


def grouped_experts(x: torch.Tensor, chosen: torch.Tensor, weights: torch.Tensor, gate_up: torch.Tensor,
                    down: torch.Tensor, act, weigh_inputs: bool = False) -> torch.Tensor:
    """Every token through its chosen experts in two grouped matmuls: the (token, expert) pairs sorted
    by expert, each expert's rows multiplied by its weights in one call (`grouped_mm`), the results
    weighted (or, `weigh_inputs`, the rows weighted going in: Llama 4) and summed back per token.
    No Python loop over experts."""
    top_k, experts = chosen.shape[1], gate_up.shape[0]
    flat = chosen.flatten()
    order = flat.argsort(stable=True)
    token = order // top_k
    weight = weights.flatten()[order, None]
    offsets = torch.bincount(flat, minlength=experts).cumsum(0).to(torch.int32)
    rows = x[token] * weight if weigh_inputs else x[token]
    gate, up = F.grouped_mm(rows, gate_up.transpose(1, 2), offs=offsets).chunk(2, dim=-1)
    y = F.grouped_mm(act(gate) * up, down.transpose(1, 2), offs=offsets)
    return torch.zeros_like(x).index_add_(0, token, y if weigh_inputs else y * weight)


def looped_experts(x: torch.Tensor, chosen: torch.Tensor, weights: torch.Tensor, gate_up: torch.Tensor,
                   down: torch.Tensor, act) -> torch.Tensor:
    """The same as `grouped_experts`, one expert at a time (what transformers does): the reference
    `bench/moe.py` measures the grouped path against."""
    out = torch.zeros_like(x)
    for expert in chosen.unique().tolist():
        token, slot = torch.where(chosen == expert)
        g, u = (x[token] @ gate_up[expert].T).chunk(2, dim=-1)
        out.index_add_(0, token, ((act(g) * u) @ down[expert].T) * weights[token, slot, None])
    return out


class MixtralForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        moe = SparseMoeBlock(config.hidden_size, config.num_local_experts, config.intermediate_size,
                             config.num_experts_per_tok, config.hidden_act)
        return DecoderLayer(config, Attention(config, layer_idx), moe)


def qwen_moe_mlp(config, layer_idx: int, shared: bool) -> nn.Module:
    """Qwen-MoE's feed-forward for one layer: sparse every `decoder_sparse_step` layers unless listed
    in `mlp_only_layers`, else dense."""
    sparse = (layer_idx not in (getattr(config, "mlp_only_layers", None) or []) and config.num_experts > 0
              and (layer_idx + 1) % getattr(config, "decoder_sparse_step", 1) == 0)
    if not sparse:
        return MLP(config.hidden_size, config.intermediate_size, config.hidden_act)
    return SparseMoeBlock(config.hidden_size, config.num_experts, config.moe_intermediate_size, config.num_experts_per_tok,
                          config.hidden_act, normalize=config.norm_topk_prob,
                          shared_inter=config.shared_expert_intermediate_size if shared else 0)
