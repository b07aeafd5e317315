"""Engine configuration."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import InvalidRequestError
from .tool_parser import TOOL_FORMATS

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
QUANTIZATIONS = ("int4", "int8")
KV_CACHE_DTYPES = ("int8", "bfloat16", "float16")


ROPE_SCALINGS = ("yarn", "linear", "llama3")


@dataclass(slots=True)
class EngineConfig:
    """Knobs of the scheduler and the KV cache.

    - `max_num_seqs`: most sequences in one step (decoding or prefilling).
    - `max_num_batched_tokens`: the token budget of one step, shared by decodes and prompt chunks;
      longer prompts are prefilled in chunks of at most this size.
    - `kv_cache_bytes`: memory for the paged KV cache; it decides how many blocks exist.
    - `kv_cache_populate`: map the whole cache into memory at start-up, as a long-running server
      wants (blocks are handed out least recently used first, so traffic otherwise first-touches the
      whole cache, a page fault per new page: ~10 % of a 64-client chat workload's first minute on a
      VM); resident memory is then all of `kv_cache_bytes` from the start. False (the default) maps
      pages as blocks are first written: a script or a test pays only for what it uses.
    - `max_model_len`: context window; defaults to the model's, capped by what the cache holds. More
      than the model was trained on is refused unless `rope_scaling` extends the window.
    - `rope_scaling`: RoPE scaling that stretches the model's window by `factor`, as transformers
      writes it: {"rope_type": "yarn" | "linear" | "llama3", "factor": 4.0, ...} (YaRN's
      `beta_fast`/`beta_slow`, Llama 3's `low_freq_factor`/`high_freq_factor` as needed).
    - `dtype`: weights, activations and KV cache ("float32" is exact against transformers).
    - `quantization`: weight-only quantization — "int4" (decoder linears in groups of 32, exact for
      a Q4_1 GGUF up to bfloat16 scales; the token embeddings and LM head at 6 bits) or "int8" (per
      output channel, the embeddings and LM head per row too). None keeps the weights in `dtype`.
    - `kv_cache_dtype`: "int8" stores keys and values as int8 with one float32 scale per token and
      head (about 3.8x the tokens of a float32 cache, 1.9x of bfloat16, in the same `kv_cache_bytes`;
      the native attention kernel reads it, scales applied as it goes). "bfloat16" or
      "float16" under float32 activations halves the cache (twice the tokens; the native kernels read
      it directly, and a decode's attention reads half the bytes), keys and values rounded as written —
      llama.cpp's default is a float16 cache. None keeps them in `dtype`.
    - `num_threads`: torch intra-op threads (None: torch's default, capped at the CPUs the process
      may use — its affinity mask and cgroup quota, see `cpus.py`).
    - `speculative_tokens`: n-gram speculative decoding — up to this many draft tokens per decoding
      sequence and step, copied from where its last tokens occurred before (0 turns it off).
    - `speculative_max_seqs`: draft only while at most this many sequences run; in a full batch
      the step is compute-bound and rejected drafts cost throughput.
    - `tool_format`: the tool-call format to prompt and parse ("hermes", "smollm2", "llama3_json",
      "mistral"); None detects it from the chat template.
    - `lora_adapters`: LoRA adapters to load at start, name -> PEFT folder (more can be loaded
      and unloaded while running: `LLMEngine.load_lora`).
    - `tool_adapter`: the adapter chat requests with tools run with unless they name one:
      "auto" (the tool-calling adapter shipped for this base model, if there is one), the name
      of an adapter in `lora_adapters`, or None (off).
    - `image_dirs`, `allow_remote_images`, `max_image_pixels`: where a vision model's `image_url`
      parts may come from besides data URLs (files under these folders; http(s) URLs when
      allowed) and the largest image it decodes.
    """

    max_num_seqs: int = 64
    max_num_batched_tokens: int = 1024
    kv_cache_bytes: int = 2 << 30
    kv_cache_populate: bool = False
    block_size: int = 16
    max_model_len: int | None = None
    rope_scaling: dict | None = None
    enable_prefix_caching: bool = True
    dtype: str = "float32"
    quantization: str | None = None
    kv_cache_dtype: str | None = None
    num_threads: int | None = None
    speculative_tokens: int = 0
    speculative_max_seqs: int = 8
    tool_format: str | None = None
    lora_adapters: dict[str, str] | None = None
    tool_adapter: str | None = "auto"
    image_dirs: tuple[str, ...] = ()
    allow_remote_images: bool = False
    max_image_pixels: int = 16_000_000

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_num_batched_tokens", "kv_cache_bytes", "block_size", "max_image_pixels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidRequestError(f"{name} must be a positive integer, got {value!r}")
        for name in ("enable_prefix_caching", "kv_cache_populate", "allow_remote_images"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidRequestError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("speculative_tokens", "speculative_max_seqs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidRequestError(f"{name} must be a non-negative integer, got {value!r}")
        if self.max_model_len is not None and (not isinstance(self.max_model_len, int) or self.max_model_len < 2):
            raise InvalidRequestError(f"max_model_len must be an integer >= 2, got {self.max_model_len!r}")
        if self.rope_scaling is not None:
            scaling = self.rope_scaling
            if not isinstance(scaling, dict) or scaling.get("rope_type") not in ROPE_SCALINGS:
                raise InvalidRequestError(f"rope_scaling must be a dict with rope_type one of {list(ROPE_SCALINGS)}, "
                                          f"got {scaling!r}")
            factor = scaling.get("factor")
            if not isinstance(factor, (int, float)) or isinstance(factor, bool) or factor <= 1:
                raise InvalidRequestError(f"rope_scaling needs a factor > 1, got {factor!r}")
        if self.tool_format is not None and self.tool_format not in TOOL_FORMATS:
            raise InvalidRequestError(f"tool_format must be one of {sorted(TOOL_FORMATS)} or None, got {self.tool_format!r}")
        if self.lora_adapters is not None and not isinstance(self.lora_adapters, dict):
            raise InvalidRequestError("lora_adapters must be a dict of adapter name -> folder")
        if self.tool_adapter is not None and (not isinstance(self.tool_adapter, str) or not self.tool_adapter):
            raise InvalidRequestError(f"tool_adapter must be 'auto', an adapter name or None, got {self.tool_adapter!r}")
        if self.quantization is not None and self.quantization not in QUANTIZATIONS:
            raise InvalidRequestError(f"quantization must be one of {list(QUANTIZATIONS)} or None, got {self.quantization!r}")
        if self.kv_cache_dtype is not None and self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise InvalidRequestError(f"kv_cache_dtype must be one of {list(KV_CACHE_DTYPES)} or None, "
                                      f"got {self.kv_cache_dtype!r}")
        if isinstance(self.image_dirs, str) or not all(isinstance(d, str) for d in self.image_dirs):
            raise InvalidRequestError(f"image_dirs must be a list of folders, got {self.image_dirs!r}")
        if self.dtype not in DTYPES:
            raise InvalidRequestError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.kv_cache_dtype in DTYPES and self.kv_cache_dtype != self.dtype and self.dtype != "float32":
            raise InvalidRequestError(f"kv_cache_dtype={self.kv_cache_dtype!r} needs dtype float32 or "
                                      f"{self.kv_cache_dtype!r}, got dtype={self.dtype!r}")

    def context_window(self, trained: int, capacity: int) -> int:
        """`max_model_len` as it can be served: the model's `trained` window (stretched by
        `rope_scaling` when loaded with it) and the KV cache's `capacity` in tokens; asking for more
        than either is refused."""
        if self.max_model_len is not None and self.max_model_len > trained:
            raise InvalidRequestError(
                f"max_model_len={self.max_model_len} is beyond the {trained} tokens the model was trained on"
                f"{' (with this rope_scaling)' if self.rope_scaling else ''}; extend the window with "
                f"rope_scaling, e.g. {{'rope_type': 'yarn', 'factor': {-(-self.max_model_len // trained)}}}")
        if self.max_model_len is not None and self.max_model_len > capacity:
            raise InvalidRequestError(
                f"max_model_len={self.max_model_len} needs more KV cache than kv_cache_bytes "
                f"={self.kv_cache_bytes} holds ({capacity} tokens); raise kv_cache_bytes")
        window = min(self.max_model_len or trained, trained, capacity)
        if window < 2:
            raise InvalidRequestError("kv_cache_bytes is too small to hold even one short sequence")
        return window

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def cache_dtype(self) -> torch.dtype:
        """The KV cache's element type."""
        return torch.int8 if self.kv_cache_dtype == "int8" else DTYPES[self.kv_cache_dtype or self.dtype]
