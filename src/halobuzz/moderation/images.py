"""Image screening: the perceptual-hash blocklist admins manage, the optional classifier plugin, and
stream cover images (thumbnails) that pass both. Avatars go through ``screen_image`` too.

A refused upload is 422 ``image_blocked`` (a blocklist match: the distances are in the details) or
``image_rejected`` (the classifier's label at or above MODERATION_IMAGE_CLASSIFIER_THRESHOLD).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from datetime import datetime
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.ai.images import Hashes, ImageClassifier, hashes_of, load_classifier, open_upright, parse_hash
from halobuzz.core import audit
from halobuzz.core.db import after_commit, after_transaction
from halobuzz.core.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from halobuzz.core.pagination import decode_cursor, encode_cursor
from halobuzz.core.runtime import Runtime
from halobuzz.moderation.models import ImageBlock
from halobuzz.streams.models import Stream

THUMBNAIL_SIZE = (640, 360)
THUMBNAIL_CACHE_CONTROL = "public, max-age=31536000, immutable"


def classifier_of(runtime: Runtime) -> ImageClassifier | None:
    if "image_classifier" not in runtime.extras:
        settings = runtime.settings.moderation
        runtime.extras["image_classifier"] = load_classifier(settings.image_classifier, runtime.settings)
    found: Any = runtime.extras["image_classifier"]
    return found  # type: ignore[no-any-return]


async def matching_block(
    *, session: AsyncSession, hashes: Hashes, threshold: int
) -> tuple[ImageBlock, int, int] | None:
    """The closest blocklist entry whose pHash and dHash are both within ``threshold`` bits."""
    best: tuple[ImageBlock, int, int] | None = None
    for row in await session.scalars(select(ImageBlock)):
        p, d = hashes.distance(Hashes(row.phash, row.dhash))
        if p <= threshold and d <= threshold and (best is None or p + d < best[1] + best[2]):
            best = (row, p, d)
    return best


async def screen_image(
    *, session: AsyncSession, runtime: Runtime, images: list[bytes], purpose: str, actor: User | None
) -> None:
    """Refuse an upload that matches the blocklist or that the classifier flags. ``images`` are the
    upload as sent and as it would be stored (a crop can hide a match from one of them)."""
    settings = runtime.settings.moderation
    for data in images:
        hashes = await asyncio.to_thread(hashes_of, data)
        found = await matching_block(session=session, hashes=hashes, threshold=settings.image_hash_distance)
        if found is not None:
            row, p, d = found
            _audit_refusal(
                session, runtime, actor, purpose, {"block_id": str(row.id), "phash_distance": p, "dhash_distance": d}
            )
            raise InvalidInput(
                "this image is not allowed here (it matches an image on the blocklist)",
                code="image_blocked",
                details={"phash_distance": p, "dhash_distance": d},
            )
    classifier = classifier_of(runtime)
    if classifier is not None:
        labels = await classifier.classify(images[0], purpose=purpose)
        flagged = {k: v for k, v in labels.items() if v >= settings.image_classifier_threshold}
        if flagged:
            _audit_refusal(session, runtime, actor, purpose, {"labels": flagged})
            raise InvalidInput(
                f"this image is not allowed here ({', '.join(sorted(flagged))})",
                code="image_rejected",
                details={"labels": flagged},
            )


def _audit_refusal(
    session: AsyncSession, runtime: Runtime, actor: User | None, purpose: str, details: dict[str, Any]
) -> None:
    # In its own transaction once the request's has ended (the refusal rolls that one back).
    async def write() -> None:
        async with runtime.db.session() as session:
            await audit.record(
                session,
                action="moderation.image_refused",
                actor_id=actor.id if actor else None,
                target_type="user",
                target_id=actor.id if actor else None,
                details={"purpose": purpose, **details},
            )

    after_transaction(session, write)


# ----------------------------------------------------------------------------- the blocklist


async def add_block(
    *,
    session: AsyncSession,
    actor: User,
    reason: str,
    image: bytes | None = None,
    phash: str | None = None,
    dhash: str | None = None,
) -> ImageBlock:
    """Block an image (from the file itself, or from its two hashes)."""
    if image is not None:
        hashes = await asyncio.to_thread(hashes_of, image)
    else:
        try:
            hashes = Hashes(parse_hash(phash or ""), parse_hash(dhash or ""))
        except ValueError as exc:
            raise InvalidInput(f"phash and dhash: {exc}", code="invalid_hash") from None
    row = ImageBlock(phash=hashes.phash, dhash=hashes.dhash, reason=reason, created_by_id=actor.id)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise Conflict("this image is already on the blocklist", code="already_blocked") from None
    await audit.record(
        session,
        action="moderation.image_block_add",
        actor_id=actor.id,
        target_type="image_block",
        target_id=row.id,
        details={"phash": row.phash, "dhash": row.dhash, "reason": reason},
    )
    return row


async def remove_block(*, session: AsyncSession, actor: User, block_id: uuid.UUID) -> None:
    row = await session.get(ImageBlock, block_id)
    if row is None:
        raise NotFound("no such blocklist entry", code="block_not_found")
    await session.delete(row)
    await audit.record(
        session,
        action="moderation.image_block_remove",
        actor_id=actor.id,
        target_type="image_block",
        target_id=block_id,
        details={"phash": row.phash, "dhash": row.dhash},
    )


async def list_blocks(*, session: AsyncSession, limit: int, cursor: str | None) -> tuple[list[ImageBlock], str | None]:
    query = select(ImageBlock).order_by(ImageBlock.created_at.desc(), ImageBlock.id.desc())
    if cursor:
        at, bid = decode_cursor(cursor, datetime, uuid.UUID)
        query = query.where((ImageBlock.created_at < at) | ((ImageBlock.created_at == at) & (ImageBlock.id < bid)))
    rows = list(await session.scalars(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)


# ----------------------------------------------------------------------------- stream covers


def normalize_cover(data: bytes, *, max_side: int) -> bytes:
    """A 16:9 WebP cover (640x360), centre-cropped, metadata dropped. Blocking: use a thread."""
    image = open_upright(data, max_side=max_side)
    try:
        cover = ImageOps.fit(image.convert("RGB"), THUMBNAIL_SIZE, Image.Resampling.LANCZOS)
    finally:
        image.close()
    out = io.BytesIO()
    cover.save(out, "WEBP", quality=85, method=4)
    return out.getvalue()


async def prepare_cover(*, runtime: Runtime, data: bytes) -> bytes:
    limits = runtime.settings.avatar
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"the image is larger than {limits.max_bytes} bytes", code="image_too_large")
    if not data:
        raise InvalidInput("the uploaded file is empty", code="invalid_image")
    return await asyncio.to_thread(normalize_cover, data, max_side=limits.max_pixels)


async def set_thumbnail(
    *, session: AsyncSession, runtime: Runtime, actor: User, stream_id: uuid.UUID, original: bytes, cover: bytes
) -> Stream:
    """Screen and store a stream's cover image (owner or admin); the previous file goes after commit."""
    from halobuzz.streams import service as streams_service

    stream = await streams_service.access_stream_for_owner(session=session, stream_id=stream_id, actor=actor, lock=True)
    await screen_image(session=session, runtime=runtime, images=[original, cover], purpose="thumbnail", actor=actor)
    key = f"thumbnails/{stream.id}/{hashlib.sha256(cover).hexdigest()[:32]}.webp"
    storage = runtime.storage
    await storage.put(key, cover, "image/webp", cache_control=THUMBNAIL_CACHE_CONTROL)
    old = stream.thumbnail_key
    stream.thumbnail_key = key
    await session.flush()
    state = {"committed": False}

    async def committed() -> None:
        state["committed"] = True
        if old and old != key:
            await storage.delete(old)

    async def drop_new() -> None:
        if not state["committed"] and key != old:
            await storage.delete(key)

    after_commit(session, committed)
    after_transaction(session, drop_new)
    runtime.cache.invalidate("streams")
    return stream


async def remove_thumbnail(*, session: AsyncSession, runtime: Runtime, stream: Stream) -> None:
    old = stream.thumbnail_key
    stream.thumbnail_key = None
    await session.flush()
    if old:
        storage = runtime.storage
        after_commit(session, lambda: storage.delete(old))
