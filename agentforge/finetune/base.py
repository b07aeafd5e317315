"""The model a run trains, loaded for `transformers` from whatever the engine loads, and the
fingerprint that ties an adapter to it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from agentforge.engine.errors import ModelLoadError
from agentforge.engine.loader import load_model, load_tokenizer
from agentforge.engine.lora import fingerprint
from agentforge.engine.registry import resolve_model


@dataclass(slots=True)
class BaseModel:
    model: object  # a transformers PreTrainedModel, float32, in training mode
    tokenizer: object
    path: Path
    fingerprint: str


def load_base(model: str | Path, four_bit: bool = False) -> BaseModel:
    """An alias, GGUF file or HF folder as a trainable `transformers` model (GGUF weights are
    dequantized by the engine's loader, which knows llama.cpp's tensor layout). `four_bit` loads
    the linear layers as bitsandbytes NF4 (QLoRA's frozen base; computation stays float32)."""
    from transformers import AutoModelForCausalLM

    path = resolve_model(model)
    tokenizer = load_tokenizer(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if four_bit:
        net = _load_four_bit(path)
    elif path.is_dir():
        net = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    else:
        loaded = load_model(path, torch.float32)
        net = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
        missing, unexpected = net.load_state_dict(loaded.model.state_dict(), strict=False)
        missing = [m for m in missing if not (m == "lm_head.weight" and loaded.config.tie_word_embeddings)]
        if missing or unexpected:
            raise ModelLoadError(f"{path}: the engine's weights do not map onto transformers' "
                                 f"{type(net).__name__} (missing {missing[:3]}, unexpected {unexpected[:3]})")
        if loaded.config.tie_word_embeddings:
            net.tie_weights()
    net.config.use_cache = False
    return BaseModel(net, tokenizer, path, fingerprint(net.config, net.get_input_embeddings().weight))


def _load_four_bit(path: Path):
    """The model with NF4 linear layers (double-quantized, as QLoRA does); a GGUF base goes through a
    temporary float32 folder first, since bitsandbytes quantizes while `from_pretrained` loads."""
    import tempfile

    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ImportError("QLoRA needs bitsandbytes: pip install 'agentforge[finetune]'") from exc
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=torch.float32)
    if path.is_dir():
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, quantization_config=quantization,
                                                    device_map="cpu")
    with tempfile.TemporaryDirectory() as folder:
        load_base(path).model.save_pretrained(folder)
        return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, quantization_config=quantization,
                                                    device_map="cpu")
