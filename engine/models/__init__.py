"""Model architectures, keyed by the `architectures` name in a Hugging Face config."""

from .gemma3 import Gemma3ForCausalLM
from .llama import LlamaForCausalLM
from .mixtral import MixtralForCausalLM
from .qwen import Qwen2ForCausalLM, Qwen3ForCausalLM

ARCHITECTURES = {
    "LlamaForCausalLM": LlamaForCausalLM,
    "MistralForCausalLM": LlamaForCausalLM,
    "Qwen2ForCausalLM": Qwen2ForCausalLM,
    "Qwen3ForCausalLM": Qwen3ForCausalLM,
    "MixtralForCausalLM": MixtralForCausalLM,
    "Gemma3ForCausalLM": Gemma3ForCausalLM,
}

__all__ = ["ARCHITECTURES", *(cls.__name__ for cls in set(ARCHITECTURES.values()))]
