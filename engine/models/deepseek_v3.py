"""DeepSeek-V3 (also Kimi K2's architecture): multi-head latent attention and a sigmoid-routed,
group-limited mixture of experts beside shared experts.

MLA in the paged cache: each token caches only its compressed latent c (kv_lora_rank numbers,
normalized) and its shared rotary key k_rot, as ONE key/value head of kv_lora_rank + rope dims. The
up-projection of keys is absorbed into the queries (q_nope @ W_UK per head scores against c
directly) and the value up-projection is applied after attention (the attended latent @ W_UV per
head), so attention is plain multi-query attention over the latents: the same paged kernel, prefix
cache and chunked prefill as every other model. Keys are their own values (attention's output keeps
the first kv_lora_rank dims), so one cache serves as both: 576 numbers per token and layer for
DeepSeek-V3, against 128 heads × (192 + 128) for expanded keys and values."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..attention import PagedAttention
from ..layers import ACTIVATIONS, MLP, RMSNorm, apply_rotary, apply_rotary_interleaved
from .llama import DecoderLayer, LlamaForCausalLM
from .mixtral import grouped_experts


class MultiHeadLatentAttention(nn.Module):
    def __init__(self, config, layer_idx: int) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.nope, self.rope, self.v_dim = config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim
        self.rank = config.kv_lora_rank
        self.interleaved = config.rope_interleave
        hidden, qk_dim, bias = config.hidden_size, self.nope + self.rope, config.attention_bias
        if config.q_lora_rank is None:
            self.q_proj = nn.Linear(hidden, self.num_heads * qk_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(hidden, config.q_lora_rank, bias=bias)
            self.q_a_layernorm = RMSNorm(config.q_lora_rank, 1e-6)
            self.q_b_proj = nn.Linear(config.q_lora_rank, self.num_heads * qk_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(hidden, self.rank + self.rope, bias=bias)
        self.kv_a_layernorm = RMSNorm(self.rank, 1e-6)
        self.kv_b_proj = nn.Linear(self.rank, self.num_heads * (self.nope + self.v_dim), bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.v_dim, hidden, bias=bias)
        scale, params = qk_dim**-0.5, config.rope_parameters
        if params.get("rope_type", "default") != "default" and params.get("mscale_all_dim") and params["factor"] > 1:
            scale *= (0.1 * params["mscale_all_dim"] * math.log(params["factor"]) + 1.0) ** 2  # YaRN's mscale, squared
        self.attn = PagedAttention(self.num_heads, 1, self.rank + self.rope, scale, shared_kv=True)

    def forward(self, hidden: torch.Tensor, cos_sin: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        t = hidden.shape[0]
        if hasattr(self, "q_proj"):
            q = self.q_proj(hidden)
        else:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(hidden)))
        q_nope, q_rot = q.view(t, self.num_heads, -1).split([self.nope, self.rope], dim=-1)
        latent, k_rot = self.kv_a_proj_with_mqa(hidden).split([self.rank, self.rope], dim=-1)
        latent = self.kv_a_layernorm(latent)
        cos, sin = cos_sin
        q_rot, k_rot = self._rotate(q_rot, cos, sin), self._rotate(k_rot[:, None], cos, sin)
        w_uk, w_uv = self.kv_b_proj.weight.view(self.num_heads, self.nope + self.v_dim, self.rank).split(
            [self.nope, self.v_dim], dim=1)
        q_latent = torch.einsum("thn,hnr->thr", q_nope, w_uk)  # the key up-projection, absorbed
        key = torch.cat([latent[:, None], k_rot], dim=-1)  # [T, 1, rank + rope]
        out = self.attn(torch.cat([q_latent, q_rot], dim=-1), key, key)[..., : self.rank]
        return self.o_proj(torch.einsum("thr,hvr->thv", out, w_uv).reshape(t, -1))

    def _rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return (apply_rotary_interleaved if self.interleaved else apply_rotary)(x, cos, sin)


class DeepseekV3MoE(nn.Module):
    """Sigmoid scores; experts come in `n_group` groups and each token picks among the `topk_group`
    groups whose two best experts score highest (scores plus a load-balancing bias choose, the plain
    scores weigh); the chosen weights are renormalized and scaled by `routed_scaling_factor`, and the
    shared experts see every token."""

    def __init__(self, config) -> None:
        super().__init__()
        experts, hidden, inter = config.n_routed_experts, config.hidden_size, config.moe_intermediate_size
        self.top_k, self.groups, self.top_groups = config.num_experts_per_tok, config.n_group, config.topk_group
        self.normalize, self.scaling = config.norm_topk_prob, config.routed_scaling_factor
        self.gate = nn.Module()
        self.gate.weight = nn.Parameter(torch.empty(experts, hidden))
        self.gate.e_score_correction_bias = nn.Parameter(torch.zeros(experts), requires_grad=False)
        self.experts = nn.Module()
        self.experts.gate_up_proj = nn.Parameter(torch.empty(experts, 2 * inter, hidden))
        self.experts.down_proj = nn.Parameter(torch.empty(experts, hidden, inter))
        self.shared_experts = MLP(hidden, inter * config.n_shared_experts, config.hidden_act)
        self.act = ACTIVATIONS[config.hidden_act]
        self.register_buffer("tokens_routed", torch.zeros(experts, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = F.linear(x.float(), self.gate.weight.float()).sigmoid()
        choice = scores + self.gate.e_score_correction_bias.float()
        grouped = choice.view(x.shape[0], self.groups, -1)
        best_groups = grouped.topk(2, dim=-1).values.sum(-1).topk(self.top_groups, dim=-1).indices
        allowed = torch.zeros_like(grouped[..., 0], dtype=torch.bool).scatter_(1, best_groups, True)
        choice = grouped.masked_fill(~allowed[..., None], float("-inf")).view_as(scores)
        chosen = choice.topk(self.top_k, dim=-1).indices
        weights = scores.gather(1, chosen)
        if self.normalize:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        self.tokens_routed += torch.bincount(chosen.flatten(), minlength=self.tokens_routed.numel())
        routed = grouped_experts(x, chosen, (weights * self.scaling).to(x.dtype), self.experts.gate_up_proj,
                                 self.experts.down_proj, self.act)
        return routed + self.shared_experts(x)


class DeepseekV3ForCausalLM(LlamaForCausalLM):
    @staticmethod
    def make_layer(config, layer_idx: int) -> nn.Module:
        if layer_idx < config.first_k_dense_replace:
            mlp = MLP(config.hidden_size, config.intermediate_size, config.hidden_act)
        else:
            mlp = DeepseekV3MoE(config)
        return DecoderLayer(config, MultiHeadLatentAttention(config, layer_idx), mlp)
