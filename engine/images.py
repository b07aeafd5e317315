"""Images in chat requests: reading `image_url` parts safely, and turning them into the prompt
tokens and pixel tiles of a vision-language model.

The model's own processor (transformers' `AutoProcessor` from the model folder) resizes and tiles
each image and writes its `<image>` placeholder tokens into the prompt; `ImageInputs` keeps the
tiles until the model runner embeds them, and a content hash per tile so the prefix cache never
mistakes one image's KV for another's (the placeholder tokens are the same for every image).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import InvalidRequestError

MAX_IMAGE_BYTES = 20 << 20


@dataclass(slots=True)
class ImagePolicy:
    """Where images may come from: data URLs always, files under `local_dirs`, http(s) URLs only
    with `allow_remote`; at most `max_pixels` pixels each (a decompression bomb is refused before
    it is decoded)."""

    local_dirs: tuple[Path, ...] = ()
    allow_remote: bool = False
    max_pixels: int = 16_000_000


def read_image(url: str, policy: ImagePolicy):
    """The RGB image an `image_url` names, or InvalidRequestError saying why it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(url, str) or not url:
        raise InvalidRequestError("image_url.url must be a non-empty string")
    data = _image_bytes(url, policy)
    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > policy.max_pixels:
            raise InvalidRequestError(f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels; "
                                      f"the limit is {policy.max_pixels / 1e6:.1f}")
        image.load()
        return image.convert("RGB")
    except UnidentifiedImageError:
        raise InvalidRequestError("image_url does not hold an image PIL can read (PNG, JPEG, WebP, GIF, ...)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidRequestError(f"image cannot be decoded ({exc}); the file may be truncated or corrupt") from None


def _image_bytes(url: str, policy: ImagePolicy) -> bytes:
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.endswith(";base64") or not header[5:].startswith("image/"):
            raise InvalidRequestError("a data URL image must be data:image/<type>;base64,<data>")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError("the data URL's base64 payload is malformed") from None
    elif url.startswith(("http://", "https://")):
        if not policy.allow_remote:
            raise InvalidRequestError("remote image URLs are off: send a data URL, or enable allow_remote_images")
        data = _download(url)
    else:
        path = Path(url.removeprefix("file://")).resolve()
        if not any(path.is_relative_to(d.resolve()) for d in policy.local_dirs):
            raise InvalidRequestError(f"{url!r} is not a data URL, nor a file under the folders images may be "
                                      "read from (image_dirs)")
        if not path.is_file():
            raise InvalidRequestError(f"image file {url!r} does not exist")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise InvalidRequestError(f"image file is over {MAX_IMAGE_BYTES >> 20} MiB")
        data = path.read_bytes()
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidRequestError(f"image is over {MAX_IMAGE_BYTES >> 20} MiB")
    return data


def _download(url: str) -> bytes:
    import httpx

    try:
        with httpx.stream("GET", url, timeout=10, follow_redirects=True) as response:
            response.raise_for_status()
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    raise InvalidRequestError(f"image at {url} is over {MAX_IMAGE_BYTES >> 20} MiB")
            return bytes(data)
    except httpx.HTTPError as exc:
        raise InvalidRequestError(f"cannot fetch image {url}: {exc}") from None


def content_hash(tensor: torch.Tensor) -> int:
    return int.from_bytes(hashlib.blake2b(tensor.contiguous().numpy().tobytes(), digest_size=8).digest())


@dataclass(slots=True, eq=False)
class ImageInputs:
    """A prompt's images as the model's vision tower takes them, where their image tokens sit, and
    (once computed) the embeddings of those tokens.

    The image tokens come in hashed items (a tile for SmolVLM, a whole image for Qwen2.5-VL): item i
    ends after `item_ends[i]` of them. Shared by a request's completions; `embeds` is filled by the
    model runner when a prompt chunk first needs it and dropped once the prompt is through."""

    model_inputs: dict  # the keyword arguments of the model's `embed_images`
    positions: list[int]  # prompt positions of the image tokens, in order
    item_ends: list[int]
    item_hashes: list[int]
    rope_positions: torch.Tensor | None = None  # (3, prompt length): M-RoPE's positions of the prompt
    rope_delta: int = 0  # M-RoPE: a generated token's rope position minus its index
    embeds: torch.Tensor | None = field(default=None, repr=False)  # (levels, image tokens, hidden)

    def rows_in(self, start: int, end: int) -> tuple[int, int]:
        """Indices into `positions` (and `embeds`) of the image tokens among prompt positions start..end."""
        return bisect.bisect_left(self.positions, start), bisect.bisect_left(self.positions, end)

    def cache_key(self, start: int, end: int) -> tuple[int, ...]:
        """What a KV block over positions start..end depends on besides its tokens: the hashes of
        the items whose image tokens it holds."""
        first, last = self.rows_in(start, end)
        if first == last:
            return ()
        return tuple(self.item_hashes[bisect.bisect_right(self.item_ends, first):
                                      bisect.bisect_right(self.item_ends, last - 1) + 1])


@dataclass(slots=True)
class StepImages:
    """What a model step needs of its sequences' images: the flat rows of the image tokens in the
    step with their embeddings, and for M-RoPE models every row's three rope positions."""

    rows: torch.Tensor
    embeds: torch.Tensor  # (levels, rows, hidden): level 0 replaces the token embeddings; Qwen3-VL adds
    # level 1 + i to the rows' hidden states after decoder layer i (DeepStack)
    rope_positions: torch.Tensor | None = None


class TiledImages:
    """SmolVLM's processor (the folder's `AutoProcessor`): resizes and tiles each image and writes
    its placeholder tokens; every tile is a hashed item of `tokens_per_tile` image tokens."""

    def __init__(self, processor, image_token_id: int, tokens_per_tile: int, tile_size: int) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.chat_template = processor.chat_template
        self.image_token_id = image_token_id
        self.tokens_per_tile = tokens_per_tile
        self.tile_size = tile_size

    def __call__(self, text: str, images: list) -> tuple[list[int], ImageInputs | None]:
        if not images:
            return self.tokenizer.encode(text, add_special_tokens=False), None
        try:
            out = self.processor(text=[text], images=[images], add_special_tokens=False, return_tensors="pt")
        except ValueError as exc:  # e.g. "<image>" typed in the text: one placeholder too many
            raise InvalidRequestError(f"the images do not fit the prompt: {exc}") from None
        ids = out["input_ids"][0].tolist()
        pixels = out["pixel_values"][0]
        if pixels.shape[-2:] != (self.tile_size, self.tile_size):
            raise InvalidRequestError(f"the processor made {tuple(pixels.shape[-2:])} tiles; the vision tower reads "
                                      f"{self.tile_size}x{self.tile_size} (check max_image_size in processor_config.json)")
        positions = [i for i, t in enumerate(ids) if t == self.image_token_id]
        if len(positions) != pixels.shape[0] * self.tokens_per_tile:
            raise InvalidRequestError(f"the prompt has {len(positions)} image tokens for {pixels.shape[0]} image "
                                      f"tiles of {self.tokens_per_tile}: the text must not contain image tokens itself")
        ends = [self.tokens_per_tile * (t + 1) for t in range(pixels.shape[0])]
        return ids, ImageInputs({"pixels": pixels}, positions, ends, [content_hash(tile) for tile in pixels])


class GridImages:
    """Qwen2.5-VL's image processor (the folder's `AutoImageProcessor`): each image becomes patches
    on a (t, h, w) grid; its one placeholder token in the chat text is repeated once per merged
    patch group; every image is a hashed item. `rope_positions(ids, grids)` is the model's M-RoPE."""

    def __init__(self, image_processor, tokenizer, image_token: str, merge_size: int, rope_positions) -> None:
        self.image_processor = image_processor
        self.tokenizer = tokenizer
        self.image_token = image_token
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        self.merge_size = merge_size
        self.rope_positions = rope_positions

    def __call__(self, text: str, images: list) -> tuple[list[int], ImageInputs | None]:
        pieces = text.split(self.image_token)
        if len(pieces) - 1 != len(images):
            raise InvalidRequestError(f"the prompt has {len(pieces) - 1} {self.image_token} placeholders for "
                                      f"{len(images)} images: the text must not contain image tokens itself")
        if not images:
            return self.tokenizer.encode(text, add_special_tokens=False), None
        out = self.image_processor(images=images, return_tensors="pt")
        grids = [tuple(g) for g in out["image_grid_thw"].tolist()]
        counts = [t * h * w // self.merge_size**2 for t, h, w in grids]
        text = pieces[0] + "".join(self.image_token * n + piece for n, piece in zip(counts, pieces[1:]))
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        positions = [i for i, t in enumerate(ids) if t == self.image_token_id]
        pixels = out["pixel_values"]
        hashes = [content_hash(p) for p in pixels.split([t * h * w for t, h, w in grids])]
        rope, delta = self.rope_positions(ids, grids)
        ends = list(itertools.accumulate(counts))
        return ids, ImageInputs({"pixels": pixels, "grids": grids}, positions, ends, hashes, rope, delta)
