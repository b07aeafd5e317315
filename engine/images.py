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


@dataclass(slots=True, eq=False)
class ImageInputs:
    """A prompt's image tiles, where their `<image>` tokens sit, and (once computed) their embeddings.

    Tile t fills prompt positions `positions[t * tokens_per_tile : (t + 1) * tokens_per_tile]`.
    Shared by a request's completions; `embeds` is filled by the model runner when a prompt chunk
    first needs it and dropped once the prompt is through."""

    pixels: torch.Tensor  # (tiles, 3, H, W)
    positions: list[int]
    tokens_per_tile: int
    tile_hashes: list[int]
    embeds: torch.Tensor | None = field(default=None, repr=False)

    def rows_in(self, start: int, end: int) -> tuple[int, int]:
        """Indices into `positions` (and `embeds`) of the image tokens among prompt positions start..end."""
        return bisect.bisect_left(self.positions, start), bisect.bisect_left(self.positions, end)

    def cache_key(self, start: int, end: int) -> tuple[int, ...]:
        """What a KV block over positions start..end depends on besides its tokens: its tiles' hashes."""
        first, last = self.rows_in(start, end)
        if first == last:
            return ()
        return tuple(self.tile_hashes[first // self.tokens_per_tile : (last - 1) // self.tokens_per_tile + 1])


class ImageProcessor:
    """A vision-language model's processor: chat text with one placeholder per image -> prompt
    token ids and `ImageInputs`."""

    def __init__(self, processor, image_token_id: int, tokens_per_tile: int, tile_size: int) -> None:
        self.processor = processor
        self.image_token_id = image_token_id
        self.tokens_per_tile = tokens_per_tile
        self.tile_size = tile_size

    def __call__(self, text: str, images: list) -> tuple[list[int], ImageInputs | None]:
        if not images:
            return self.processor.tokenizer.encode(text, add_special_tokens=False), None
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
        hashes = [int.from_bytes(hashlib.blake2b(tile.numpy().tobytes(), digest_size=8).digest()) for tile in pixels]
        return ids, ImageInputs(pixels, positions, self.tokens_per_tile, hashes)
