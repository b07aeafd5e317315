"""What a run hands back to the engine: an adapter tied to its base, or a merged model folder."""

from __future__ import annotations

from pathlib import Path

from agentforge.engine.errors import ModelLoadError
from agentforge.engine.lora import adapter_meta


def merge_adapter(adapter: str | Path, output: str | Path, base=None) -> Path:
    """Fold a LoRA adapter into its base and save a Hugging Face folder (safetensors + tokenizer)
    that the engine and `transformers` both load. `base` is a freshly loaded `BaseModel` or None
    (the model the adapter's record names is loaded)."""
    from peft import PeftModel

    from .base import load_base

    adapter, output = Path(adapter), Path(output)
    meta = adapter_meta(adapter)
    if base is None:
        if "base_model" not in meta:
            raise ModelLoadError(f"{adapter} does not say which base model it was trained on; pass `base`")
        base = load_base(meta["base_model"])
    expected = meta.get("base_fingerprint")
    if expected and expected != base.fingerprint:
        raise ModelLoadError(f"{adapter} was trained on another base model than {base.path}")
    PeftModel.from_pretrained(base.model, adapter).merge_and_unload().save_pretrained(output)
    base.tokenizer.save_pretrained(output)
    return output
