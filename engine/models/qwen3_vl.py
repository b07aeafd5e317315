"""Qwen3-VL: Qwen2.5-VL's recipe with a plain ViT (learned positions resampled to each image's grid,
LayerNorm, full attention) whose features from a few middle blocks are added to the image rows'
hidden states after the first decoder layers (DeepStack), and a Qwen3 decoder whose M-RoPE
interleaves the time / height / width frequencies instead of giving each a contiguous band.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..images import StepImages
from ..layers import ACTIVATIONS, RotaryEmbedding
from .qwen import Qwen3ForCausalLM
from .qwen2_5_vl import MRotaryEmbedding, QwenVL, VisionAttention


class InterleavedMRotaryEmbedding(MRotaryEmbedding):
    """M-RoPE with frequencies t, h, w, t, h, w, ...: frequency j turns with row j % 3's position
    for j < 3 * section (the time row beyond)."""

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        if positions.dim() == 1:
            return RotaryEmbedding.forward(self, positions, dtype)
        freqs = positions[..., None].float() * self.inv_freq  # (3, N, dim/2)
        mixed = freqs[0].clone()
        for row in (1, 2):
            band = slice(row, self.sections[row] * 3, 3)
            mixed[..., band] = freqs[row, ..., band]
        emb = torch.cat((mixed, mixed), dim=-1)
        return (emb.cos() * self.scaling).to(dtype)[:, None, :], (emb.sin() * self.scaling).to(dtype)[:, None, :]


class VisionMLP(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.linear_fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.linear_fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act = ACTIVATIONS[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_fc2(self.act(self.linear_fc1(x)))


class VisionBlock(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=1e-6)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=1e-6)
        self.attn = VisionAttention(config)
        self.mlp = VisionMLP(config)

    def forward(self, hidden, cos, sin):
        hidden = hidden + self.attn(self.norm1(hidden), cos, sin, [0, hidden.shape[0]])
        return hidden + self.mlp(self.norm2(hidden))


class PatchMerger(nn.Module):
    """LayerNorm then a 2-layer MLP over each 2x2 merge group; the DeepStack mergers normalize
    after grouping the four patches, the final one before."""

    def __init__(self, config, norm_after_grouping: bool) -> None:
        super().__init__()
        self.size = config.hidden_size * config.spatial_merge_size**2
        self.norm_after_grouping = norm_after_grouping
        self.norm = nn.LayerNorm(self.size if norm_after_grouping else config.hidden_size, eps=1e-6)
        self.linear_fc1 = nn.Linear(self.size, self.size)
        self.linear_fc2 = nn.Linear(self.size, config.out_hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x.view(-1, self.size)) if self.norm_after_grouping else self.norm(x).view(-1, self.size)
        return self.linear_fc2(F.gelu(self.linear_fc1(x)))


class VisionTransformer(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.merge = config.spatial_merge_size
        self.patch_embed = nn.Module()
        kernel = (config.temporal_patch_size, config.patch_size, config.patch_size)
        self.patch_embed.proj = nn.Conv3d(config.in_channels, config.hidden_size, kernel_size=kernel, stride=kernel)
        self.pos_embed = nn.Embedding(config.num_position_embeddings, config.hidden_size)
        dim = config.hidden_size // config.num_heads // 2
        theta = (config.rope_parameters or {}).get("rope_theta", 10000.0)
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim), persistent=False)
        self.blocks = nn.ModuleList(VisionBlock(config) for _ in range(config.depth))
        self.merger = PatchMerger(config, norm_after_grouping=False)
        self.deepstack_merger_list = nn.ModuleList(PatchMerger(config, norm_after_grouping=True)
                                                   for _ in config.deepstack_visual_indexes)

    def forward(self, patches: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """One image's patches on its (t, h, w) grid -> (1 + DeepStack levels, merge groups, hidden)."""
        c, (t, h, w), m = self.config, grid, self.merge
        hidden = self.patch_embed.proj(patches.view(-1, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size))
        hidden = hidden.view(patches.shape[0], -1) + self._learned_positions(h, w).repeat(t, 1).to(hidden.dtype)
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        rows, cols = (x.reshape(h // m, m, w // m, m).transpose(1, 2).flatten() for x in (rows, cols))
        freqs = torch.stack([rows, cols], dim=-1).repeat(t, 1)[..., None].float() * self.inv_freq
        emb = torch.cat((freqs.flatten(1), freqs.flatten(1)), -1)[:, None, :]
        cos, sin = emb.cos(), emb.sin()
        levels = []
        for i, block in enumerate(self.blocks):
            hidden = block(hidden, cos, sin)
            if i in c.deepstack_visual_indexes:
                levels.append(self.deepstack_merger_list[c.deepstack_visual_indexes.index(i)](hidden))
        return torch.stack([self.merger(hidden), *levels])

    def _learned_positions(self, h: int, w: int) -> torch.Tensor:
        """The square learned position grid resampled (bilinear, corners aligned) to h x w, in the
        processor's 2x2-merge-group order."""
        side, m = int(self.config.num_position_embeddings**0.5), self.merge
        table = self.pos_embed.weight.view(side, side, -1).permute(2, 0, 1)[None].float()
        grid = F.interpolate(table, size=(h, w), mode="bilinear", align_corners=True)[0].permute(1, 2, 0)
        return grid.reshape(h // m, m, w // m, m, -1).transpose(1, 2).reshape(h * w, -1)


class Qwen3VLForConditionalGeneration(QwenVL, Qwen3ForCausalLM):
    """`config` is transformers' Qwen3VLConfig; the decoder is Qwen3 with interleaved M-RoPE and DeepStack."""

    rotary_class = InterleavedMRotaryEmbedding
    vision_class = VisionTransformer

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, images: StepImages | None = None) -> torch.Tensor:
        """Like Qwen2.5-VL's, and the image rows take the DeepStack features after the first layers."""
        hidden = self.model.embed_tokens(input_ids)
        if images is None:
            return self.model(input_ids, positions, hidden)
        hidden[images.rows] = images.embeds[0].to(hidden.dtype)
        rope = self.model.position_encoding(images.rope_positions, hidden.dtype)
        for i, layer in enumerate(self.model.layers):
            hidden = layer(hidden, rope)
            if i + 1 < images.embeds.shape[0]:
                hidden[images.rows] += images.embeds[i + 1].to(hidden.dtype)
        return self.model.norm(hidden)
