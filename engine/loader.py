"""Load a model and its tokenizer from a Hugging Face folder (config.json + safetensors) or a
GGUF file (see `gguf_file.py`), into one of our architectures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import EngineError, InvalidRequestError, ModelLoadError
from .gguf_file import ROPE_FREQ_DIVISORS, gguf_tokenizer, open_gguf
from .models import ARCHITECTURES
from .registry import resolve_model


@dataclass(slots=True)
class LoadedModel:
    model: nn.Module
    config: object  # a transformers PretrainedConfig
    tokenizer: object  # a transformers tokenizer
    path: Path
    eos_token_ids: set[int] = field(default_factory=set)
    images: object = None  # a vision model's `TiledImages` / `GridImages`: chat text and images -> prompt


# per-expert tensor names -> Mixtral's: w1 gate, w3 up, w2 down
_EXPERT_PARTS = {"w1": "w1", "w2": "w2", "w3": "w3", "gate_proj": "w1", "up_proj": "w3", "down_proj": "w2"}


def load_model(model: str | Path, dtype: torch.dtype = torch.float32, rope_scaling: dict | None = None) -> LoadedModel:
    """Resolve `model` (alias, GGUF file or HF folder) and load weights, config and tokenizer;
    `rope_scaling` (see EngineConfig) stretches its context window."""
    path = resolve_model(model)
    try:
        if path.is_dir():
            config, tokenizer, weights = _open_hf_folder(path)
        else:
            config, tokenizer, weights = open_gguf(path)
        if rope_scaling:
            _scale_rope(config, rope_scaling)
        net = _build(config, weights, dtype)
        images = net.image_processor(path, tokenizer) if hasattr(net, "image_processor") else None
    except EngineError:
        raise
    except Exception as exc:  # corrupt or foreign files surface as many library errors
        raise ModelLoadError(f"cannot load model from {path}: {type(exc).__name__}: {exc}") from exc
    if images is not None and getattr(tokenizer, "chat_template", None) is None:
        tokenizer.chat_template = getattr(images, "chat_template", None)
    eos = _eos_token_ids(config, tokenizer, gguf=not path.is_dir()) | _eos_token_ids(net.config, tokenizer, False)
    return LoadedModel(net, net.config, tokenizer, path, eos, images)


# Chat models end a turn with one of these; a GGUF file records only one EOS id, so (like
# llama.cpp) we also stop on any of them the vocabulary has.
_END_OF_TURN_TOKENS = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|eom_id|>", "<|end|>")


def _eos_token_ids(config, tokenizer, gguf: bool) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    config_eos = getattr(config, "eos_token_id", None)
    ids |= set(config_eos) if isinstance(config_eos, list) else {config_eos} if config_eos is not None else set()
    if gguf:
        vocab = tokenizer.get_vocab()
        ids |= {vocab[t] for t in _END_OF_TURN_TOKENS if t in vocab}
    return ids


def load_tokenizer(model: str | Path):
    """Only the tokenizer (with its chat template) of an alias, GGUF file or HF folder."""
    path = resolve_model(model)
    try:
        if path.is_dir():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(path)
        return gguf_tokenizer(path)
    except Exception as exc:
        raise ModelLoadError(f"cannot load a tokenizer from {path}: {type(exc).__name__}: {exc}") from exc


@contextmanager
def _skip_init() -> Iterator[None]:
    """Build modules without random initialisation: every weight is overwritten by the checkpoint."""
    saved = nn.Linear.reset_parameters, nn.Embedding.reset_parameters
    nn.Linear.reset_parameters = nn.Embedding.reset_parameters = lambda self: None
    try:
        yield
    finally:
        nn.Linear.reset_parameters, nn.Embedding.reset_parameters = saved


def _scale_rope(config, scaling: dict) -> None:
    """Replace the model's RoPE parameters by `scaling` over its trained window, which grows by the factor."""
    params = getattr(config, "rope_parameters", None) or {}
    if "rope_theta" not in params:  # per-layer-type parameters (Gemma 3): which layers to stretch is the model's call
        raise InvalidRequestError("rope_scaling is not supported for models with per-layer RoPE parameters")
    original = int(scaling.get("original_max_position_embeddings") or config.max_position_embeddings)
    config.rope_parameters = {"rope_theta": params["rope_theta"], **scaling, "original_max_position_embeddings": original}
    config.max_position_embeddings = int(original * scaling["factor"])


def _build(config, weights: Iterator[tuple[str, torch.Tensor]], dtype: torch.dtype) -> nn.Module:
    arch = (getattr(config, "architectures", None) or [None])[0]
    if arch not in ARCHITECTURES:
        raise ModelLoadError(f"unsupported architecture {arch!r}; supported: {sorted(ARCHITECTURES)}")
    with _skip_init():
        net = ARCHITECTURES[arch](config)
    renames = getattr(net, "checkpoint_prefixes", ())
    params = dict(net.named_parameters(remove_duplicate=False))
    missing = set(dict(net.named_parameters()))  # tied weights appear once
    with torch.no_grad():
        for name, tensor in weights:
            for prefix, ours in renames:
                if name.startswith(prefix):
                    name = ours + name[len(prefix):]
                    break
            if name == ROPE_FREQ_DIVISORS:  # a GGUF file's RoPE scaling (gguf_file.py)
                net.get_buffer("model.rotary_emb.inv_freq").div_(tensor)
                continue
            if name not in params:
                continue  # e.g. rotary caches some checkpoints carry
            if params[name].shape != tensor.shape:
                raise ModelLoadError(f"tensor {name}: shape {tuple(tensor.shape)}, model expects {tuple(params[name].shape)}")
            params[name].copy_(tensor)
            missing.discard(name)
            if name == "model.embed_tokens.weight" and params.get("lm_head.weight") is params[name]:
                missing.discard("lm_head.weight")
    if missing:
        raise ModelLoadError(f"checkpoint lacks {len(missing)} tensors, e.g. {sorted(missing)[:3]}")
    # RoPE's inverse frequencies stay float32: rounded to bfloat16 they are off by up to 0.4%, and
    # position x frequency with them (thousands of radians down a long context) loses its phase
    frequencies = {name: buffer for name, buffer in net.named_buffers() if name.endswith("inv_freq")}
    net = net.to(dtype).eval()
    for name, buffer in frequencies.items():
        owner, _, attribute = name.rpartition(".")
        setattr(net.get_submodule(owner), attribute, buffer)
    return net


# --- Hugging Face folders ---------------------------------------------------------------------


def _open_hf_folder(path: Path):
    from safetensors import safe_open
    from transformers import AutoConfig, AutoTokenizer

    if not (path / "config.json").exists():
        raise ModelLoadError(f"{path} is not a model folder: no config.json")
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"{path} has no .safetensors weights")
    config = AutoConfig.from_pretrained(path)
    quantized = getattr(config, "quantization_config", None)
    if quantized:  # e.g. DeepSeek-V3's FP8 blocks: the tensors are not the weights without their scales
        method = quantized.get("quant_method", "quantized") if isinstance(quantized, dict) else type(quantized).__name__
        raise ModelLoadError(f"{path.name} holds {method} weights, which the engine does not read: use the "
                             "bf16/fp16/fp32 checkpoint or a GGUF file (quantization='int4' or 'int8' quantizes at load)")
    tokenizer = AutoTokenizer.from_pretrained(path)
    config, text_only = _text_model_of(config)

    def weights() -> Iterator[tuple[str, torch.Tensor]]:
        experts: dict[str, dict[tuple[int, str], torch.Tensor]] = {}
        for file in files:
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():
                    name = _language_model_name(key) if text_only else key
                    if name is None:
                        continue  # the vision tower, the projector
                    name = name.replace(".block_sparse_moe.", ".mlp.")  # Mixtral checkpoints' name
                    parts = name.split(".")
                    if "experts" in parts and parts[-2] in _EXPERT_PARTS:  # per-expert layout (Mixtral's, Qwen-MoE's)
                        i = parts.index("experts")
                        prefix = ".".join(parts[: i + 1])
                        experts.setdefault(prefix, {})[(int(parts[i + 1]), _EXPERT_PARTS[parts[-2]])] = f.get_tensor(key)
                    else:
                        yield name, f.get_tensor(key)
        for prefix, tensors in experts.items():
            n = 1 + max(e for e, _ in tensors)
            yield f"{prefix}.gate_up_proj", torch.stack(
                [torch.cat([tensors[(e, "w1")], tensors[(e, "w3")]]) for e in range(n)]
            )
            yield f"{prefix}.down_proj", torch.stack([tensors[(e, "w2")] for e in range(n)])

    return config, tokenizer, weights()


def _text_model_of(config) -> tuple[object, bool]:
    """A vision-language checkpoint (Gemma 3 4B+, Mistral 3 / Ministral 3, Llama 4) whose language
    model is one we run loads as that text model: its `text_config`, the weights under its language
    model's prefix (`_language_model_name`); the vision tower is not read. (config, True) then."""
    text = getattr(config, "text_config", None)
    if (getattr(config, "architectures", None) or [None])[0] in ARCHITECTURES or text is None:
        return config, False
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    text_arch = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(text.model_type)
    if text_arch not in ARCHITECTURES:
        return config, False  # refused by _build with the list of what runs
    text.architectures = [text_arch]
    if getattr(config, "tie_word_embeddings", False):
        text.tie_word_embeddings = True
    return text, True


_LANGUAGE_MODEL_PREFIXES = (("language_model.model.", "model."), ("model.language_model.", "model."),
                            ("language_model.lm_head.", "lm_head."), ("lm_head.", "lm_head."))


def _language_model_name(key: str) -> str | None:
    """A vision-language checkpoint's tensor name as its text model's, or None for the rest."""
    for prefix, ours in _LANGUAGE_MODEL_PREFIXES:
        if key.startswith(prefix):
            return ours + key[len(prefix):]
    return None
