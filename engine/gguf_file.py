"""GGUF files: metadata -> transformers config, tensors -> dequantized Hugging Face state dict,
tokenizer and chat template from the metadata.

Dequantization (Q4_0/Q5_0/Q4_K/Q5_K/Q6_K/...) is the `gguf` package's, Q4_1 and Q8_0 our own; llama.cpp's
tensor names, its rotary permutation of q/k and Gemma's stored (1 + weight) norms are undone here.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .errors import ModelLoadError

_GGUF_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "ffn_gate_inp": "mlp.gate",
    "ffn_down_exps": "mlp.experts.down_proj",
    "ffn_gate_inp_shexp": "mlp.shared_expert_gate",
    "ffn_gate_shexp": "mlp.shared_expert.gate_proj",
    "ffn_up_shexp": "mlp.shared_expert.up_proj",
    "ffn_down_shexp": "mlp.shared_expert.down_proj",
}
_GEMMA_LAYER_NAMES = {
    **_GGUF_LAYER_NAMES,
    "ffn_norm": "pre_feedforward_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
}
# Seed-OSS's norm after attention is the one before the MLP (llama.cpp names it by position)
_SEED_OSS_LAYER_NAMES = {**_GGUF_LAYER_NAMES, "post_attention_norm": "post_attention_layernorm"}
# Llama 4's feed-forward is `feed_forward`, its router `router`, its shared expert `shared_expert`
_LLAMA4_LAYER_NAMES = {**{k: v.replace("mlp.", "feed_forward.") for k, v in _GGUF_LAYER_NAMES.items()},
                       "ffn_gate_inp": "feed_forward.router"}
# DeepSeek-V3's multi-head latent attention (kv_b_proj comes split in attn_k_b / attn_v_b, see _mla_kv_b)
_DEEPSEEK2_LAYER_NAMES = {
    **_GGUF_LAYER_NAMES,
    "attn_q_a": "self_attn.q_a_proj",
    "attn_q_a_norm": "self_attn.q_a_layernorm",
    "attn_q_b": "self_attn.q_b_proj",
    "attn_kv_a_mqa": "self_attn.kv_a_proj_with_mqa",
    "attn_kv_a_norm": "self_attn.kv_a_layernorm",
    "exp_probs_b": "mlp.gate.e_score_correction_bias",
    "ffn_gate_shexp": "mlp.shared_experts.gate_proj",
    "ffn_up_shexp": "mlp.shared_experts.up_proj",
    "ffn_down_shexp": "mlp.shared_experts.down_proj",
}
# Hunyuan's q/k norms are query/key_layernorm, its router `gate.wg`, its shared expert `shared_mlp`
_HUNYUAN_LAYER_NAMES = {
    **_GGUF_LAYER_NAMES,
    "attn_q_norm": "self_attn.query_layernorm",
    "attn_k_norm": "self_attn.key_layernorm",
    "ffn_gate_inp": "mlp.gate.wg",
    "ffn_gate_shexp": "mlp.shared_mlp.gate_proj",
    "ffn_up_shexp": "mlp.shared_mlp.up_proj",
    "ffn_down_shexp": "mlp.shared_mlp.down_proj",
}
_LAYER_NAMES = {"gemma2": _GEMMA_LAYER_NAMES, "gemma3": _GEMMA_LAYER_NAMES, "seed_oss": _SEED_OSS_LAYER_NAMES,
                "llama4": _LLAMA4_LAYER_NAMES, "deepseek2": _DEEPSEEK2_LAYER_NAMES,
                "hunyuan-dense": _HUNYUAN_LAYER_NAMES, "hunyuan-moe": _HUNYUAN_LAYER_NAMES}
SUPPORTED = ("llama", "llama4", "mistral3", "qwen2", "qwen3", "qwen2moe", "qwen3moe", "gemma2", "gemma3", "seed_oss",
             "deepseek2 (DeepSeek-V3 / Kimi K2)", "hunyuan-dense", "hunyuan-moe")
_ROTARY_PERMUTED = ("llama", "mistral3")  # architectures whose q/k rows llama.cpp's converter permutes
_GGUF_GLOBAL_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def _gguf_config(meta: dict, tensor_names: set[str]):
    from transformers import (
        DeepseekV3Config,
        Gemma2Config,
        Gemma3TextConfig,
        HunYuanDenseV1Config,
        HunYuanMoEV1Config,
        Llama4TextConfig,
        LlamaConfig,
        Ministral3Config,
        MixtralConfig,
        Qwen2Config,
        Qwen2MoeConfig,
        Qwen3Config,
        Qwen3MoeConfig,
        SeedOssConfig,
    )

    arch = meta["general.architecture"]

    def p(key: str, default=None):
        return meta.get(f"{arch}.{key}", default)

    heads = p("attention.head_count")
    hidden = p("embedding_length")
    head_dim = p("attention.key_length") or hidden // heads
    common = dict(
        vocab_size=p("vocab_size") or meta["tokenizer.ggml.tokens"],  # the reader gives arrays as counts
        hidden_size=hidden,
        intermediate_size=p("feed_forward_length"),
        num_hidden_layers=p("block_count"),
        num_attention_heads=heads,
        num_key_value_heads=p("attention.head_count_kv", heads),
        head_dim=head_dim,
        max_position_embeddings=p("context_length"),
        rms_norm_eps=p("attention.layer_norm_rms_epsilon", 1e-6),
        tie_word_embeddings="output.weight" not in tensor_names,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=meta.get("tokenizer.ggml.eos_token_id"),
    )
    rope = {"rope_type": "default", "rope_theta": p("rope.freq_base", 10000.0)}
    if arch == "llama" and p("expert_count"):
        return MixtralConfig(
            **common,
            rope_parameters=rope,
            num_local_experts=p("expert_count"),
            num_experts_per_tok=p("expert_used_count"),
            architectures=["MixtralForCausalLM"],
        )
    if arch == "llama":
        return LlamaConfig(**common, rope_parameters=rope, architectures=["LlamaForCausalLM"])
    if arch == "qwen2":
        return Qwen2Config(**common, rope_parameters=rope, architectures=["Qwen2ForCausalLM"])
    if arch == "qwen3":
        return Qwen3Config(**common, rope_parameters=rope, architectures=["Qwen3ForCausalLM"])
    if arch in ("qwen2moe", "qwen3moe"):
        experts = dict(num_experts=p("expert_count"), num_experts_per_tok=p("expert_used_count"),
                       moe_intermediate_size=p("expert_feed_forward_length"), decoder_sparse_step=1, mlp_only_layers=[])
        if arch == "qwen3moe":  # llama.cpp renormalizes Qwen3-MoE's top-k weights, never Qwen2-MoE's
            return Qwen3MoeConfig(**common, **experts, norm_topk_prob=True, rope_parameters=rope,
                                  architectures=["Qwen3MoeForCausalLM"])
        return Qwen2MoeConfig(**common, **experts, shared_expert_intermediate_size=p("expert_shared_feed_forward_length"),
                              norm_topk_prob=False, rope_parameters=rope, architectures=["Qwen2MoeForCausalLM"])
    if arch == "llama4":  # llama.cpp fixes the rest as Llama 4 ships it: NoPE every 4th layer, 8192-token chunks
        return Llama4TextConfig(**{**common, "intermediate_size": p("expert_feed_forward_length")},
                                intermediate_size_mlp=p("feed_forward_length"), num_local_experts=p("expert_count"),
                                num_experts_per_tok=p("expert_used_count"),
                                interleave_moe_layer_step=p("interleave_moe_layer_step", 1), rope_parameters=rope,
                                architectures=["Llama4ForCausalLM"])
    if arch == "deepseek2":
        if p("expert_gating_func") != 2:  # 1: softmax (DeepSeek-V2), 2: sigmoid with a bias (V3)
            raise ModelLoadError("this DeepSeek GGUF routes experts by softmax (DeepSeek-V2); only DeepSeek-V3-style "
                                 "sigmoid routing (V3, R1, Kimi K2) runs")
        rope_dim = p("rope.dimension_count")
        if p("rope.scaling.type") == "yarn":  # the converter writes 0.1 * mscale_all_dim
            rope = _yarn(p, rope, p("rope.scaling.yarn_log_multiplier", 0.0) / 0.1)
        return DeepseekV3Config(
            **{**common, "num_key_value_heads": heads, "head_dim": rope_dim}, rope_parameters=rope,
            moe_intermediate_size=p("expert_feed_forward_length"), q_lora_rank=p("attention.q_lora_rank"),
            kv_lora_rank=p("attention.kv_lora_rank"), qk_rope_head_dim=rope_dim,
            qk_nope_head_dim=p("attention.key_length_mla") - rope_dim, v_head_dim=p("attention.value_length_mla"),
            n_routed_experts=p("expert_count"), num_experts_per_tok=p("expert_used_count"),
            n_group=p("expert_group_count", 1), topk_group=p("expert_group_used_count", 1),
            n_shared_experts=p("expert_shared_count"), routed_scaling_factor=p("expert_weights_scale", 1.0),
            norm_topk_prob=p("expert_weights_norm", False), first_k_dense_replace=p("leading_dense_block_count"),
            architectures=["DeepseekV3ForCausalLM"])
    if arch == "seed_oss":
        return SeedOssConfig(**common, rope_parameters=rope, attention_bias="blk.0.attn_q.bias" in tensor_names,
                             attention_out_bias="blk.0.attn_output.bias" in tensor_names,
                             architectures=["SeedOssForCausalLM"])
    if arch == "mistral3":  # Ministral 3 / Mistral 3's text model: YaRN, and Llama 4's query temperature
        if p("rope.scaling.type") == "yarn":  # the converter writes mscale_all_dim as it is
            rope = _yarn(p, rope, p("rope.scaling.yarn_log_multiplier", 1.0),
                         llama_4_scaling_beta=p("attention.temperature_scale", 0.0))
        return Ministral3Config(**common, sliding_window=None, rope_parameters=rope,
                                architectures=["Ministral3ForCausalLM"])
    # Hunyuan's NTK-alpha RoPE arrives as the base it scales to (base * alpha^(d/(d-2)))
    if arch == "hunyuan-dense":
        return HunYuanDenseV1Config(**common, rope_parameters=rope, attention_bias="blk.0.attn_q.bias" in tensor_names,
                                    architectures=["HunYuanDenseV1ForCausalLM"])
    if arch == "hunyuan-moe":
        if p("expert_feed_forward_length") != p("expert_shared_feed_forward_length"):
            raise ModelLoadError("this Hunyuan MoE GGUF sizes its experts and its shared MLP differently; Hunyuan's "
                                 "own model (and the engine's) gives both intermediate_size")
        return HunYuanMoEV1Config(**common, rope_parameters=rope, attention_bias="blk.0.attn_q.bias" in tensor_names,
                                  num_experts=p("expert_count"), moe_topk=p("expert_used_count"),
                                  architectures=["HunYuanMoEV1ForCausalLM"])
    if arch == "gemma2":
        # llama.cpp scales Gemma 2 queries by 1/sqrt(head_dim), by 1/sqrt(hidden/heads) for the 27B (46 layers)
        scalar = hidden // heads if common["num_hidden_layers"] == 46 else head_dim
        return Gemma2Config(**common, rope_parameters=rope, sliding_window=p("attention.sliding_window"),
                            query_pre_attn_scalar=scalar, attn_logit_softcapping=p("attn_logit_softcapping"),
                            final_logit_softcapping=p("final_logit_softcapping"),
                            layer_types=["sliding_attention" if i % 2 == 0 else "full_attention"
                                         for i in range(common["num_hidden_layers"])],
                            architectures=["Gemma2ForCausalLM"])
    if arch == "gemma3":
        n = common["num_hidden_layers"]
        return Gemma3TextConfig(
            **common,
            sliding_window=p("attention.sliding_window"),
            query_pre_attn_scalar=head_dim,
            layer_types=["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(n)],
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                "full_attention": rope,
            },
            architectures=["Gemma3ForCausalLM"],
        )
    raise ModelLoadError(f"unsupported GGUF architecture {arch!r}; supported: {', '.join(SUPPORTED)}")


def _yarn(p, rope: dict, mscale: float, **extra) -> dict:
    """YaRN's RoPE parameters from a file's rope.scaling keys; the file keeps one mscale, used for both
    of Hugging Face's (they are equal in the checkpoints the converter reads)."""
    return {**rope, "rope_type": "yarn", "factor": p("rope.scaling.factor"), "mscale": mscale, "mscale_all_dim": mscale,
            "original_max_position_embeddings": p("rope.scaling.original_context_length"),
            "beta_fast": p("rope.scaling.yarn_beta_fast", 32.0), "beta_slow": p("rope.scaling.yarn_beta_slow", 1.0),
            **extra}


def gguf_tokenizer(path: Path):
    """The tokenizer and chat template the file's metadata describes (transformers' converter)."""
    from transformers import PreTrainedTokenizerFast
    from transformers.integrations.gguf import (
        convert_gguf_tokenizer,
        get_gguf_tokenizer,
    )

    arch, tokenizer_dict, tokenizer_config = get_gguf_tokenizer(str(path))
    backend, extra = convert_gguf_tokenizer(arch, tokenizer_dict)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **tokenizer_config, **extra)


# Llama 3.1+'s RoPE scaling as llama.cpp stores it: a divisor per frequency (the file has no scaling
# parameters to rebuild it from); the loader divides the model's own inverse frequencies by them
ROPE_FREQ_DIVISORS = "model.rotary_emb.rope_freqs"


def _mla_kv_b(k_b: np.ndarray, v_b: np.ndarray) -> torch.Tensor:
    """DeepSeek's kv_b_proj from the halves llama.cpp stores: per head, the key part (transposed,
    heads x kv_lora x nope) and the value part (heads x v x kv_lora)."""
    return torch.from_numpy(np.concatenate([k_b.swapaxes(1, 2), v_b], axis=1).reshape(-1, v_b.shape[2]).copy())


def _unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's q/k row permutation (interleaved rotary halves -> Hugging Face order)."""
    return w.reshape(heads, w.shape[0] // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


_GGUF_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # by value type
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _gguf_tensor_table(blob: np.ndarray) -> tuple[list[tuple[str, tuple[int, ...], int, int]], int]:
    """[(name, torch-order shape, ggml type, offset)] and where tensor data starts.

    Reads only the header and skips metadata values (the tokenizer arrays are large): the
    `gguf` package's reader parses every value and takes ~10 s on a 262k-token vocabulary.
    """
    if bytes(blob[:4]) != b"GGUF":
        raise ModelLoadError("not a GGUF file (bad magic bytes)")
    version, tensor_count, kv_count = struct.unpack_from("<IQQ", blob, 4)
    if version not in (2, 3):
        raise ModelLoadError(f"unsupported GGUF version {version}")
    pos, alignment = 24, 32

    def skip_string(pos: int) -> int:
        (length,) = struct.unpack_from("<Q", blob, pos)
        return pos + 8 + length

    for _ in range(kv_count):
        key_end = skip_string(pos)
        key = bytes(blob[pos + 8 : key_end]).decode()
        (value_type,) = struct.unpack_from("<I", blob, key_end)
        pos = key_end + 4
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", blob, pos)
        if value_type == _GGUF_STRING:
            pos = skip_string(pos)
        elif value_type == _GGUF_ARRAY:
            item_type, count = struct.unpack_from("<IQ", blob, pos)
            pos += 12
            if item_type == _GGUF_STRING:
                for _ in range(count):
                    pos = skip_string(pos)
            else:
                pos += count * _GGUF_SCALAR_SIZES[item_type]
        else:
            pos += _GGUF_SCALAR_SIZES[value_type]
    entries = []
    for _ in range(tensor_count):
        name_end = skip_string(pos)
        name = bytes(blob[pos + 8 : name_end]).decode()
        (dims,) = struct.unpack_from("<I", blob, name_end)
        shape = struct.unpack_from(f"<{dims}Q", blob, name_end + 4)
        ggml_type, offset = struct.unpack_from("<IQ", blob, name_end + 4 + 8 * dims)
        pos = name_end + 4 + 8 * dims + 12
        entries.append((name, tuple(reversed(shape)), ggml_type, offset))  # ggml lists the fastest dim first
    return entries, -(-pos // alignment) * alignment


def _gguf_tensors(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(llama.cpp name, float32 array in torch order) for every tensor, dequantized one at a time."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
    from gguf.quants import dequantize

    blob = np.memmap(path, mode="r", dtype=np.uint8)
    entries, data_start = _gguf_tensor_table(blob)
    for name, shape, type_id, offset in entries:
        qtype = GGMLQuantizationType(type_id)
        block_size, block_bytes = GGML_QUANT_SIZES[qtype]
        rows, cols = math.prod(shape[:-1]), shape[-1]
        nbytes = rows * cols // block_size * block_bytes
        raw = blob[data_start + offset : data_start + offset + nbytes]
        if len(raw) != nbytes:
            raise ModelLoadError(f"{path.name} is truncated: tensor {name!r} runs past the end of the file")
        if qtype == GGMLQuantizationType.F32:
            data = np.array(raw.view(np.float32))
        elif qtype == GGMLQuantizationType.F16:
            data = raw.view(np.float16).astype(np.float32)
        elif qtype == GGMLQuantizationType.BF16:
            data = torch.from_numpy(np.array(raw)).view(torch.bfloat16).float().numpy()
        elif qtype.name in _TORCH_DEQUANTIZE:
            data = _TORCH_DEQUANTIZE[qtype.name](torch.from_numpy(np.array(raw)).view(-1, block_bytes)).numpy()
        else:
            data = dequantize(raw.reshape(rows, -1), qtype)
        yield name, data.reshape(shape)


def _dequantize_q4_1(blocks: torch.Tensor) -> torch.Tensor:
    """Q4_1 blocks (float16 d, float16 m, 16 bytes of nibbles: low halves first) as d * q + m."""
    d, m = blocks[:, :4].contiguous().view(torch.float16).float().split(1, dim=1)
    nibbles = torch.cat([blocks[:, 4:] & 0x0F, blocks[:, 4:] >> 4], dim=1)
    return d * nibbles.float() + m


def _dequantize_q8_0(blocks: torch.Tensor) -> torch.Tensor:
    """Q8_0 blocks (float16 d, 32 int8 values) as d * q."""
    d = blocks[:, :2].contiguous().view(torch.float16).float()
    return blocks[:, 2:].contiguous().view(torch.int8).float() * d


# The types the shipped models use, in PyTorch (≈ 10× faster than the `gguf` package's NumPy, same
# float32 arithmetic, so the same values); every other type goes through `gguf`.
_TORCH_DEQUANTIZE = {"Q8_0": _dequantize_q8_0, "Q4_1": _dequantize_q4_1}


def open_gguf(path: Path):
    """(transformers config, tokenizer, iterator of (HF name, tensor)) for a GGUF file."""
    from transformers.integrations.gguf import read_gguf_metadata

    meta, names = read_gguf_metadata(str(path))
    config = _gguf_config(meta, set(names))
    tokenizer = gguf_tokenizer(path)
    arch = meta["general.architecture"]
    layer_names = _LAYER_NAMES.get(arch, _GGUF_LAYER_NAMES)

    def weights() -> Iterator[tuple[str, torch.Tensor]]:
        experts: dict[str, dict[str, np.ndarray]] = {}
        for gguf_name, data in _gguf_tensors(path):
            base, _, kind = gguf_name.rpartition(".")  # kind: weight / bias
            if base.startswith("blk."):
                _, layer, short = base.split(".", 2)
                if short in ("ffn_gate_exps", "ffn_up_exps", "attn_k_b", "attn_v_b"):
                    experts.setdefault(layer, {})[short] = data  # assembled below
                    continue
                if short not in layer_names:
                    raise ModelLoadError(f"unexpected tensor {gguf_name!r} in {path.name}")
                name = f"model.layers.{layer}.{layer_names[short]}"
                if arch in _ROTARY_PERMUTED and short == "attn_q":
                    data = _unpermute(data, config.num_attention_heads)
                elif arch in _ROTARY_PERMUTED and short == "attn_k":
                    data = _unpermute(data, config.num_key_value_heads)
                elif arch == "llama4" and short == "ffn_down_exps":  # Llama 4's experts take inputs first
                    data = data.swapaxes(1, 2)
            elif base in _GGUF_GLOBAL_NAMES:
                name = _GGUF_GLOBAL_NAMES[base]
            elif base == "rope_freqs":
                yield ROPE_FREQ_DIVISORS, torch.from_numpy(np.ascontiguousarray(data)).float()
                continue
            else:
                continue
            if arch in ("gemma2", "gemma3") and base.endswith("norm"):
                data = data - 1.0  # llama.cpp stores Gemma's (1 + weight)
            whole = base.endswith(("_exps", "exp_probs_b"))  # names of parameters, not of modules with a .weight
            yield name if whole else f"{name}.{kind}", torch.from_numpy(np.ascontiguousarray(data))
        for layer, pair in experts.items():
            if "attn_k_b" in pair:
                yield f"model.layers.{layer}.self_attn.kv_b_proj.weight", _mla_kv_b(pair["attn_k_b"], pair["attn_v_b"])
            if "ffn_gate_exps" not in pair:
                continue
            gate, up = pair["ffn_gate_exps"], pair["ffn_up_exps"]
            if arch == "llama4":
                gate_up = np.concatenate([gate.swapaxes(1, 2), up.swapaxes(1, 2)], axis=2)
            else:
                gate_up = np.concatenate([gate, up], axis=1)
            block = "feed_forward" if arch == "llama4" else "mlp"
            yield f"model.layers.{layer}.{block}.experts.gate_up_proj", torch.from_numpy(np.ascontiguousarray(gate_up))

    return config, tokenizer, weights()
