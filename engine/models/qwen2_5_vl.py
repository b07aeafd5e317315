"""Qwen2.5-VL: a ViT with 2-D RoPE and windowed attention, a 2x2 patch merger, and a Qwen2 decoder
whose RoPE takes three positions per token (M-RoPE: time, height, width).

Text tokens have the same three positions, counting on from the previous token; an image's tokens
take (start, start + row, start + column) over its merged patch grid, and the text after it resumes
at start + max(rows, columns). So a prompt's positions are not its token indices: the engine gives
the model both (`images.py` computes the rope positions with the processor's grids).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..images import GridImages, StepImages
from ..layers import MLP, RMSNorm, RotaryEmbedding
from .qwen import Qwen2ForCausalLM


class MRotaryEmbedding(RotaryEmbedding):
    """RoPE over (3, N) positions: frequency band i of `mrope_section` turns with row i's position."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.sections = config.rope_parameters.get("mrope_section", [16, 24, 24])

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        if positions.dim() == 1:  # a text-only step: the three rows are equal
            return super().forward(positions, dtype)
        freqs = positions[..., None].float() * self.inv_freq  # (3, N, dim/2)
        freqs = torch.cat([band[i % 3] for i, band in enumerate(freqs.split(self.sections, dim=-1))], dim=-1)
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.scaling).to(dtype)[:, None, :], (emb.sin() * self.scaling).to(dtype)[:, None, :]


class VisionAttention(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, bounds: list[int]) -> torch.Tensor:
        """Attention within each span `bounds[i]:bounds[i + 1]` (a window, or the whole image)."""
        n = hidden.shape[0]
        q, k, v = self.qkv(hidden).view(n, 3, self.num_heads, -1).unbind(1)
        q, k = (x * cos + torch.cat((-x.chunk(2, -1)[1], x.chunk(2, -1)[0]), -1) * sin for x in (q.float(), k.float()))
        q, k = q.to(v.dtype), k.to(v.dtype)
        out = torch.cat([F.scaled_dot_product_attention(*(x[a:b].transpose(0, 1) for x in (q, k, v))).transpose(0, 1)
                         for a, b in zip(bounds, bounds[1:])])
        return self.proj(out.reshape(n, -1))


class VisionBlock(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.norm1 = RMSNorm(config.hidden_size, 1e-6)
        self.norm2 = RMSNorm(config.hidden_size, 1e-6)
        self.attn = VisionAttention(config)
        self.mlp = MLP(config.hidden_size, config.intermediate_size, config.hidden_act, bias=True)

    def forward(self, hidden, cos, sin, bounds):
        hidden = hidden + self.attn(self.norm1(hidden), cos, sin, bounds)
        return hidden + self.mlp(self.norm2(hidden))


class PatchMerger(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        size = config.hidden_size * config.spatial_merge_size**2
        self.ln_q = RMSNorm(config.hidden_size, 1e-6)
        self.mlp = nn.Sequential(nn.Linear(size, size), nn.GELU(), nn.Linear(size, config.out_hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.ln_q(x).view(-1, self.mlp[0].in_features))


class VisionTransformer(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.merge = config.spatial_merge_size
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(config.in_channels, config.hidden_size, bias=False,
                                          kernel_size=(config.temporal_patch_size, config.patch_size, config.patch_size),
                                          stride=(config.temporal_patch_size, config.patch_size, config.patch_size))
        dim = config.hidden_size // config.num_heads // 2
        theta = (config.rope_parameters or {}).get("rope_theta", 10000.0)
        self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim), persistent=False)
        self.blocks = nn.ModuleList(VisionBlock(config) for _ in range(config.depth))
        self.merger = PatchMerger(config)

    def forward(self, patches: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """One image's flattened patches (t*h*w, C*T*P*P) on its (t, h, w) grid -> (1, merged 2x2
        patch groups, hidden), in the processor's order."""
        c = self.config
        hidden = self.patch_embed.proj(patches.view(-1, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size))
        hidden = hidden.view(patches.shape[0], -1)
        order, windows = self._windows(grid)
        unit = self.merge**2
        hidden = hidden.view(-1, unit, hidden.shape[-1])[order].flatten(0, 1)
        freqs = self._positions(grid)[..., None].float() * self.inv_freq  # (n, 2, dim/4)
        freqs = freqs.flatten(1).view(-1, unit, freqs.shape[1] * freqs.shape[2])[order].flatten(0, 1)
        emb = torch.cat((freqs, freqs), -1)[:, None, :]
        cos, sin = emb.cos(), emb.sin()
        whole = [0, hidden.shape[0]]
        for i, block in enumerate(self.blocks):
            hidden = block(hidden, cos, sin, whole if i in c.fullatt_block_indexes else windows)
        return self.merger(hidden)[torch.argsort(order)][None]

    def _positions(self, grid: tuple[int, int, int]) -> torch.Tensor:
        """(row, column) of every patch, in the processor's order: 2x2 merge groups, row-major."""
        t, h, w = grid
        m = self.merge
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        rows, cols = (x.reshape(h // m, m, w // m, m).transpose(1, 2).flatten() for x in (rows, cols))
        return torch.stack([rows, cols], dim=-1).repeat(t, 1)

    def _windows(self, grid: tuple[int, int, int]) -> tuple[torch.Tensor, list[int]]:
        """Merge groups reordered window by window, and where each window starts and ends (in patches)."""
        t, h, w = grid
        side = self.config.window_size // self.merge // self.config.patch_size  # merge groups per window side
        gh, gw = h // self.merge, w // self.merge
        index = torch.arange(t * gh * gw).view(t, gh, gw)
        ph, pw = -gh % side, -gw % side
        index = F.pad(index, (0, pw, 0, ph), value=-1)
        index = index.view(t, (gh + ph) // side, side, (gw + pw) // side, side).permute(0, 1, 3, 2, 4).reshape(-1, side * side)
        sizes = (index >= 0).sum(1)
        order = index[index >= 0]
        bounds = [0] + (sizes[sizes > 0].cumsum(0) * self.merge**2).tolist()
        return order, bounds


class QwenVL:
    """What Qwen2.5-VL and Qwen3-VL share around their towers: checkpoint names, the image
    processor, M-RoPE positions of a prompt, and embedding the images one by one."""

    checkpoint_prefixes = (("model.language_model.", "model."), ("model.visual.", "visual."))
    rotary_class: type
    vision_class: type

    def __init__(self, config) -> None:
        """`config` is the whole checkpoint's; the decoder is built from its `text_config`."""
        text = config.text_config
        text.tie_word_embeddings = getattr(config, "tie_word_embeddings", False) or getattr(text, "tie_word_embeddings", False)
        super().__init__(text)
        self.model.rotary_emb = self.rotary_class(text)
        self.visual = self.vision_class(config.vision_config)
        self.image_token_id = config.image_token_id

    def image_processor(self, path, tokenizer) -> GridImages:
        from transformers import AutoImageProcessor

        image_token = tokenizer.convert_ids_to_tokens(self.image_token_id)
        return GridImages(AutoImageProcessor.from_pretrained(path), tokenizer, image_token, self.visual.merge,
                          self.rope_positions)

    def rope_positions(self, ids: list[int], grids: list[tuple[int, int, int]]) -> tuple[torch.Tensor, int]:
        """A prompt's (3, len) M-RoPE positions, and how far later tokens' positions are from their index."""
        parts, current, i, grids = [], 0, 0, iter(grids)
        while i < len(ids):
            if ids[i] != self.image_token_id:
                j = next((k for k in range(i, len(ids)) if ids[k] == self.image_token_id), len(ids))
                parts.append(torch.arange(j - i).expand(3, -1) + current)
                current, i = current + j - i, j
                continue
            t, h, w = next(grids)
            h, w = h // self.visual.merge, w // self.visual.merge
            parts.append(torch.stack(torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij"))
                         .reshape(3, -1) + current)
            current, i = current + max(h, w), i + t * h * w
        table = torch.cat(parts, dim=1)
        return table, int(table.max()) + 1 - len(ids)

    def embed_images(self, pixels: torch.Tensor, grids: list[tuple[int, int, int]]) -> torch.Tensor:
        """Every image's patches (concatenated, as the processor gives them) -> (levels, image
        tokens, hidden): the embeddings of their image tokens, in order."""
        dtype = self.visual.patch_embed.proj.weight.dtype
        sizes = [t * h * w for t, h, w in grids]
        return torch.cat([self.visual(p.to(dtype), g) for p, g in zip(pixels.split(sizes), grids)], dim=1)


class Qwen2_5_VLForConditionalGeneration(QwenVL, Qwen2ForCausalLM):
    """`config` is transformers' Qwen2_5_VLConfig; the decoder is Qwen2 with M-RoPE."""

    rotary_class = MRotaryEmbedding
    vision_class = VisionTransformer

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, images: StepImages | None = None) -> torch.Tensor:
        """`images`: for a step with image prompts, the rows of image tokens with their embeddings
        and every row's three rope positions; without, the rope positions are the positions."""
        hidden = self.model.embed_tokens(input_ids)
        if images is None:
            return self.model(input_ids, positions, hidden)
        hidden[images.rows] = images.embeds[0].to(hidden.dtype)
        return self.model(input_ids, images.rope_positions, hidden)
