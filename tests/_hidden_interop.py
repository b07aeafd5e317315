"""A pytest plugin (`-p _hidden_interop`) and import hook that make LangChain, LangGraph and
LlamaIndex look uninstalled, to prove the core needs none of them."""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

HIDDEN = ("langchain", "langgraph", "llama_index")


class HideInterop(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith(HIDDEN):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by tests/_hidden_interop.py)", name=name)
        return None


def hide() -> None:
    if any(name.split(".")[0].startswith(HIDDEN) for name in sys.modules):
        raise RuntimeError("hide the interop packages before anything imports them")
    sys.meta_path.insert(0, HideInterop())


hide()
