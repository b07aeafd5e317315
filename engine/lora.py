"""LoRA adapters served side by side over one base model (multi-LoRA, in one continuous batch).

An adapter is a PEFT folder (`adapter_config.json` + `adapter_model.safetensors`). Its low-rank
pairs hook the base model's linear layers: each step, the rows of the tokens whose request chose
an adapter get `scaling * (x @ A.T) @ B.T` added — one pair of small matmuls per adapter present
in the batch, so base requests and several adapters share every step and the base weights.
An adapter's KV blocks are its own in the prefix cache (`LoRAAdapter.uid` salts their hashes).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import InvalidRequestError, ModelLoadError
from .packed import PackedLinear
from .quant import Int4Linear, Int6Linear, Int8Linear

ADAPTER_META = "agentforge.json"  # written by agentforge.finetune: base model, its fingerprint, metrics
BASE = "base"  # the name that asks for no adapter


def fingerprint(config, embeddings: torch.Tensor) -> str:
    """Architecture, sizes and a few rows of the token embeddings rounded to bfloat16: the same base
    in any dtype, from GGUF or from a folder, gives the same value; another base does not."""
    digest = hashlib.sha256()
    arch = (getattr(config, "architectures", None) or [type(config).__name__])[0]
    digest.update(f"{arch}|{config.hidden_size}|{config.num_hidden_layers}|{config.vocab_size}".encode())
    digest.update(embeddings[:4, :64].detach().to(torch.bfloat16).view(torch.int16).numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass(slots=True, eq=False)
class LoRAAdapter:
    name: str
    path: Path
    scaling: float
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]  # module name -> (A [r, in], B [out, r])
    meta: dict = field(default_factory=dict)  # its `agentforge.json` record
    uid: int = 0


_uids = itertools.count(1)


def adapter_meta(adapter: str | Path) -> dict:
    """The training run's record of a PEFT adapter folder ({} for an adapter trained elsewhere)."""
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"{path} is not a LoRA adapter folder: no adapter_config.json")
    meta = path / ADAPTER_META
    return json.loads(meta.read_text()) if meta.is_file() else {}


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or name == BASE or ":" in name:
        raise InvalidRequestError(f"adapter name must be a non-empty string without ':' and not {BASE!r}, got {name!r}")


def read_adapter(name: str, path: str | Path, model: nn.Module, base_fingerprint: str, dtype: torch.dtype) -> LoRAAdapter:
    """Read and check a PEFT LoRA folder against the model it will run on (`base_fingerprint`: that
    model's `fingerprint` as loaded, before quantization)."""
    from safetensors.torch import load_file

    _check_name(name)
    path = Path(path).expanduser()
    meta = adapter_meta(path)
    settings = json.loads((path / "adapter_config.json").read_text())
    expected = meta.get("base_fingerprint")
    if expected and expected != base_fingerprint:
        raise ModelLoadError(f"adapter {path} was trained for another base model ({meta.get('base_model')!r}), "
                             "not the one this engine runs")
    files = sorted(path.glob("adapter_model*.safetensors"))
    if not files:
        raise ModelLoadError(f"{path} has no adapter_model.safetensors")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        tensors.update(load_file(str(file)))
    return adapter_from_tensors(name, tensors, settings, model, dtype, path, meta)


def adapter_from_tensors(name: str, tensors: dict[str, torch.Tensor], settings: dict, model: nn.Module,
                         dtype: torch.dtype, path: str | Path = "<memory>", meta: dict | None = None) -> LoRAAdapter:
    """An adapter from PEFT's saved tensors (`get_peft_model_state_dict`) and its `adapter_config.json`
    settings, checked against the model it will run on; the tensors are copied."""
    path = Path(path)
    _check_name(name)
    if settings.get("peft_type", "LORA") != "LORA":
        raise ModelLoadError(f"{path}: only LoRA adapters can be served, this one is {settings['peft_type']}")
    for flag in ("use_dora", "fan_in_fan_out"):
        if settings.get(flag):
            raise ModelLoadError(f"{path}: {flag} adapters are not supported")
    if settings.get("modules_to_save"):
        raise ModelLoadError(f"{path}: adapters that also train whole modules ({settings['modules_to_save']}) "
                             "cannot be served side by side; merge it into the base instead")
    rank = int(settings["r"])
    alpha = float(settings.get("lora_alpha", rank))
    scaling = alpha / rank ** 0.5 if settings.get("use_rslora") else alpha / rank
    pairs = {}
    for key, a in tensors.items():
        if ".lora_A." not in key:
            continue
        module_name = key.split(".lora_A.")[0].removeprefix("base_model.model.")
        b = tensors.get(key.replace(".lora_A.", ".lora_B."))
        try:
            module = model.get_submodule(module_name)
        except AttributeError:
            module = None
        if not isinstance(module, (nn.Linear, PackedLinear, Int4Linear, Int6Linear, Int8Linear)) or b is None:
            raise ModelLoadError(f"adapter {path} targets {module_name!r}, which is not a linear layer of this model "
                                 "(trained for another base model?)")
        if a.shape != (a.shape[0], module.in_features) or b.shape != (module.out_features, a.shape[0]):
            raise ModelLoadError(f"adapter {path}: {module_name} has shapes {tuple(a.shape)}/{tuple(b.shape)}, "
                                 f"the model's layer is {module.in_features}->{module.out_features} "
                                 "(trained for another base model?)")
        pairs[module_name] = (a.detach().to(dtype, copy=True).contiguous(), b.detach().to(dtype, copy=True).contiguous())
    if not pairs:
        raise ModelLoadError(f"adapter {path} holds no LoRA weights")
    return LoRAAdapter(name, path, scaling, pairs, meta or {}, next(_uids))


SHIPPED = Path(__file__).parent / "adapters"  # tool-calling adapters trained for the default models


def shipped_tool_adapter(base_fingerprint: str) -> Path | None:
    """The shipped tool-calling adapter trained on the base model of this `fingerprint`, if there is one."""
    if not SHIPPED.is_dir():
        return None
    for folder in sorted(SHIPPED.iterdir()):
        if adapter_meta(folder).get("base_fingerprint") == base_fingerprint:
            return folder
    return None


@dataclass(slots=True)
class LoRABatch:
    """Which rows of a step's flat token batch belong to which adapter."""

    rows: list[tuple[LoRAAdapter, torch.Tensor]]


class LoRAHooks:
    """The adapters loaded into one model, and the forward hooks that apply them per token."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.adapters: dict[str, LoRAAdapter] = {}
        self.batch: LoRABatch | None = None
        self._hooks: dict[str, object] = {}

    def add(self, adapter: LoRAAdapter) -> None:
        if adapter.name in self.adapters:
            raise InvalidRequestError(f"an adapter named {adapter.name!r} is already loaded; unload it first")
        self.adapters[adapter.name] = adapter
        for module_name in adapter.pairs:
            if module_name not in self._hooks:
                module = self.model.get_submodule(module_name)
                self._hooks[module_name] = module.register_forward_hook(self._hook(module_name))

    def remove(self, name: str) -> LoRAAdapter:
        adapter = self.adapters.pop(name, None)
        if adapter is None:
            raise InvalidRequestError(f"no adapter named {name!r} is loaded; loaded: {sorted(self.adapters)}")
        used = {m for a in self.adapters.values() for m in a.pairs}
        for module_name in list(self._hooks):
            if module_name not in used:
                self._hooks.pop(module_name).remove()
        return adapter

    def _hook(self, module_name: str):
        owner = weakref.ref(self)  # the model must not keep its hooks' owner alive: no reference cycle

        def apply(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> torch.Tensor:
            hooks = owner()
            if hooks is None or hooks.batch is None:
                return output
            x = inputs[0]
            for adapter, rows in hooks.batch.rows:
                pair = adapter.pairs.get(module_name)
                if pair is not None:
                    a, b = pair
                    output.index_add_(0, rows, (x.index_select(0, rows) @ a.T) @ b.T, alpha=adapter.scaling)
            return output

        return apply
