"""What a running engine computes with, changed at run time: LoRA adapters loaded, unloaded and
chosen per request (the shipped tool-calling adapter among them), and the base weights replaced in
place (a trainer's current policy). Part of `LLMEngine`, kept apart from its request loop."""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import InvalidRequestError
from .lora import BASE, LoRAAdapter, read_adapter, shipped_tool_adapter
from .packed import repack
from .protocol import SamplingParams


class LiveWeights:
    """`LLMEngine`'s weights and adapters; uses its `model`, `model_config`, `config`, `runner`,
    `block_manager`, `requests` and `tool_adapter`."""

    @property
    def loras(self) -> dict[str, LoRAAdapter]:
        """The adapters loaded, by name."""
        return dict(self.runner.lora.adapters)

    def read_lora(self, name: str, path: str | Path) -> LoRAAdapter:
        """Read and check an adapter for this model without loading it (safe from any thread)."""
        return read_adapter(name, path, self.model, self.fingerprint, self.config.torch_dtype)

    def load_lora(self, name: str, path: str | Path | LoRAAdapter) -> LoRAAdapter:
        """Load a PEFT LoRA adapter that requests can then choose by name (`SamplingParams.lora`)."""
        adapter = path if isinstance(path, LoRAAdapter) else self.read_lora(name, path)
        self.runner.lora.add(adapter)
        return adapter

    def unload_lora(self, name: str) -> None:
        """Unload an adapter; refused while a request runs with it."""
        busy = [r.request_id for r in self.requests.values() if r.lora is not None and r.lora.name == name]
        if busy:
            raise InvalidRequestError(f"adapter {name!r} is in use by {len(busy)} running request(s)")
        self.runner.lora.remove(name)
        if self.tool_adapter == name:
            self.tool_adapter = None

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Copy new values into the model's parameters, by name (e.g. a trainer's current policy);
        refused while requests run. The prefix cache is dropped: its KV came from the old weights."""
        if self.requests:
            raise InvalidRequestError(f"cannot change the weights while {len(self.requests)} request(s) run")
        params = dict(self.model.named_parameters())
        for name, value in weights.items():
            target = params.get(name)
            if target is None or target.shape != value.shape:
                raise InvalidRequestError(f"weight {name!r} {tuple(value.shape)} does not match a parameter of the "
                                          f"model ({tuple(target.shape) if target is not None else 'no such name'})")
        with torch.no_grad():
            for name, value in weights.items():
                params[name].copy_(value)
        repack(self.model)
        self.block_manager.forget_cached()

    def _tool_adapter(self) -> str | None:
        setting = self.config.tool_adapter
        if setting != "auto":
            if setting is not None and setting not in self.runner.lora.adapters:
                raise InvalidRequestError(f"tool_adapter {setting!r} is not among lora_adapters "
                                          f"{sorted(self.runner.lora.adapters)}")
            return setting
        path = shipped_tool_adapter(self.fingerprint)
        if path is None or "tools" in self.runner.lora.adapters:
            return None
        self.load_lora("tools", path)
        return "tools"

    def _lora_of(self, params: SamplingParams, has_tools: bool = False) -> LoRAAdapter | None:
        name = params.lora
        if name is None:
            name = self.tool_adapter if has_tools else None
        if name is None or name == BASE:
            return None
        adapter = self.runner.lora.adapters.get(name)
        if adapter is None:
            raise InvalidRequestError(f"no LoRA adapter named {name!r} is loaded; loaded: "
                                      f"{sorted(self.runner.lora.adapters)}")
        return adapter
