"""Perceptual hashes of images (pHash and dHash, 64 bits each) and the image classifier interface.

* dHash: the image as 9x8 grey levels; each bit says whether a pixel is brighter than its right
  neighbour.
* pHash: the image as 32x32 grey levels, a 2-D DCT, the 8x8 lowest frequencies (DC excluded from the
  median); each bit says whether a coefficient is above their median (the imagehash library's method).

Both survive re-encoding, resizing and small colour changes; ``distance`` is the number of differing
bits. An image matches a blocklist entry when both hashes are within the threshold, so an unrelated
picture that happens to share one hash is not refused. Pure Python (no numpy): about 5 ms per image.

Classifiers are plugins: ``MODERATION_IMAGE_CLASSIFIER="package.module:factory"``, where
``factory(settings)`` returns an object with ``async def classify(image: bytes, *, purpose: str) ->
dict[str, float]`` (label → confidence). None is configured by default.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from PIL import Image, ImageOps

from halobuzz.core.errors import InvalidInput
from halobuzz.core.images import UnsupportedImageType, _open_checked, sniff_image_type

HASH_BITS = 64


@dataclass(frozen=True, slots=True)
class Hashes:
    phash: str  # 16 hex digits
    dhash: str

    def distance(self, other: Hashes) -> tuple[int, int]:
        return distance(self.phash, other.phash), distance(self.dhash, other.dhash)


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _grey(image: Image.Image, size: tuple[int, int]) -> list[int]:
    small = image.convert("L").resize(size, Image.Resampling.LANCZOS)
    return list(small.tobytes())  # one byte per grey pixel, row by row


def dhash(image: Image.Image) -> str:
    px = _grey(image, (9, 8))
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return f"{bits:016x}"


@lru_cache(maxsize=1)
def _dct_basis() -> list[list[float]]:
    n = 32
    return [[math.cos(math.pi * (2 * x + 1) * u / (2 * n)) for x in range(n)] for u in range(8)]


def phash(image: Image.Image) -> str:
    px = _grey(image, (32, 32))
    basis = _dct_basis()
    # Rows first (only the 8 lowest frequencies are needed), then columns.
    rows = [[sum(b[x] * px[y * 32 + x] for x in range(32)) for b in basis] for y in range(32)]
    coeffs = [[sum(basis[v][y] * rows[y][u] for y in range(32)) for u in range(8)] for v in range(8)]
    flat = [c for row in coeffs for c in row]
    median = sorted(flat[1:])[len(flat[1:]) // 2]
    bits = 0
    for c in flat:
        bits = (bits << 1) | (c > median)
    return f"{bits:016x}"


def open_upright(data: bytes, *, max_side: int) -> Image.Image:
    """An uploaded image decoded (PNG, JPEG or WebP by content; size checked before decoding) and turned
    upright; 415 ``unsupported_image_type`` or 422 ``invalid_image``/``image_too_large`` otherwise."""
    kind = sniff_image_type(data)
    if kind is None:
        raise UnsupportedImageType("only PNG, JPEG and WebP images are accepted (checked by content, not by name)")
    image = _open_checked(data, kind, max_side)
    try:
        image.load()
        with contextlib.suppress(Exception):  # a malformed EXIF block only loses the orientation hint
            return ImageOps.exif_transpose(image)
        return image
    except Exception as exc:  # truncated or corrupt pixel data
        image.close()
        raise InvalidInput(
            "the image could not be read (corrupt or truncated); upload a valid PNG, JPEG or WebP", code="invalid_image"
        ) from exc


def hashes_of(data: bytes, *, max_side: int = 8192) -> Hashes:
    """The hashes of an encoded image (PNG, JPEG or WebP; checked like uploads). Blocking: use a thread."""
    image = open_upright(data, max_side=max_side)
    try:
        return Hashes(phash(image), dhash(image))
    finally:
        image.close()


def parse_hash(value: str) -> str:
    """A 64-bit hash as 16 lower-case hex digits; ``ValueError`` otherwise."""
    text = value.strip().lower()
    if len(text) != 16 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError("a hash is 16 hexadecimal digits (64 bits)")
    return text


class ImageClassifier(Protocol):
    async def classify(self, image: bytes, *, purpose: str) -> dict[str, float]: ...


def load_classifier(path: str | None, settings: Any) -> ImageClassifier | None:
    """The configured classifier plugin, or None."""
    if not path:
        return None
    from halobuzz.core.events import resolve_path

    factory = resolve_path(path)
    if factory is None:
        raise RuntimeError(f"MODERATION_IMAGE_CLASSIFIER {path!r} does not name an importable factory")
    classifier: ImageClassifier = factory(settings)
    return classifier


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
