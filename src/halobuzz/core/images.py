"""Untrusted image uploads turned into small, metadata-free WebP files.

The type is decided by the file's first bytes (PNG, JPEG or WebP), never by its name or the
Content-Type the client sent, and Pillow is only allowed the decoder those bytes name. Dimensions
are read from the header and checked before any pixel is decoded, so a small file that claims a
huge canvas (a decompression bomb) is refused without allocating it. The output is re-encoded
from pixels alone: EXIF (GPS positions, camera serials), ICC profiles, XMP and comments are gone.

These functions are CPU-bound and blocking: call them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from halobuzz.core.errors import DomainError, InvalidInput

ACCEPTED_TYPES = ("PNG", "JPEG", "WEBP")
WEBP_QUALITY = 85


class UnsupportedImageType(DomainError):
    status_code = 415
    code = "unsupported_image_type"


def sniff_image_type(data: bytes) -> str | None:
    """The Pillow format name the magic bytes of ``data`` announce, or None when not accepted."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _invalid(reason: str) -> InvalidInput:
    return InvalidInput(
        f"the image could not be read ({reason}); upload a valid PNG, JPEG or WebP file", code="invalid_image"
    )


def _open_checked(data: bytes, kind: str, max_side: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=[kind])
    except Image.DecompressionBombError as exc:
        raise InvalidInput(
            f"the image is too large; at most {max_side}x{max_side} pixels", code="image_too_large"
        ) from exc
    except Exception as exc:  # Pillow raises assorted types (OSError, SyntaxError, ValueError …) on bad input
        raise _invalid("not a decodable image") from exc
    width, height = image.size
    if width < 1 or height < 1:
        raise _invalid("empty canvas")
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if width > max_side or height > max_side or (pillow_limit is not None and width * height > pillow_limit):
        raise InvalidInput(
            f"the image is {width}x{height} pixels; at most {max_side}x{max_side} are accepted",
            code="image_too_large",
            details={"width": width, "height": height, "max_side": max_side},
        )
    return image


def normalize_avatar(data: bytes, *, size: int, max_side: int) -> bytes:
    """``data`` (PNG, JPEG or WebP) as a ``size``x``size`` WebP: upright, centre-cropped, no metadata.

    Raises ``UnsupportedImageType`` (415) for anything else, ``InvalidInput`` for undecodable
    files (``invalid_image``) and canvases wider or taller than ``max_side`` (``image_too_large``).
    """
    kind = sniff_image_type(data)
    if kind is None:
        raise UnsupportedImageType("only PNG, JPEG and WebP images are accepted (checked by content, not by name)")
    image = _open_checked(data, kind, max_side)
    try:
        if kind == "JPEG":
            # Let the JPEG decoder scale down by 1/2, 1/4 or 1/8 while staying at least ``size`` wide.
            image.draft("RGB", (size, size))
        image.load()
        try:
            oriented = ImageOps.exif_transpose(image)
        except Exception:  # a malformed EXIF block only loses the orientation hint
            oriented = image
        keep_alpha = oriented.mode in ("RGBA", "LA", "PA") or (oriented.mode == "P" and "transparency" in oriented.info)
        pixels = oriented.convert("RGBA" if keep_alpha else "RGB")
        square = ImageOps.fit(pixels, (size, size), Image.Resampling.LANCZOS)
    except Exception as exc:  # truncated or corrupt pixel data
        raise _invalid("corrupt or truncated pixel data") from exc
    finally:
        image.close()
    square.info.clear()  # nothing of the original's metadata may reach the encoder
    out = io.BytesIO()
    square.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()
