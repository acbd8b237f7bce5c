"""Co-host rooms: the owner invites guests; the owner and invited guests get Agora or LiveKit tokens."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User, UserStatus
from halobuzz.config import RtcSettings
from halobuzz.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from halobuzz.media import rtc
from halobuzz.media.models import StreamGuest
from halobuzz.streams import service as streams
from halobuzz.streams.models import Stream

Provider = Literal["agora", "livekit"]


async def invite_guest(*, session: AsyncSession, actor: User, stream_id: uuid.UUID, user_id: uuid.UUID) -> StreamGuest:
    """Invite a user to co-host (owner or admin); inviting twice keeps the first invitation."""
    await streams.access_stream_for_owner(session=session, stream_id=stream_id, actor=actor)
    guest_user = await session.get(User, user_id)
    if guest_user is None or guest_user.status == UserStatus.DELETED.value:
        raise NotFound("no such user", code="user_not_found")
    existing = await session.get(StreamGuest, (stream_id, user_id))
    if existing is not None:
        return existing
    guest = StreamGuest(stream_id=stream_id, user_id=user_id, invited_by=actor.id)
    try:
        async with session.begin_nested():
            session.add(guest)
    except IntegrityError:  # a racing invitation won: the same row
        found = await session.get(StreamGuest, (stream_id, user_id))
        assert found is not None
        return found
    return guest


async def list_guests(*, session: AsyncSession, actor: User, stream_id: uuid.UUID) -> list[StreamGuest]:
    await streams.access_stream_for_owner(session=session, stream_id=stream_id, actor=actor)
    rows = await session.scalars(
        select(StreamGuest).where(StreamGuest.stream_id == stream_id).order_by(StreamGuest.created_at)
    )
    return list(rows)


async def remove_guest(*, session: AsyncSession, actor: User, stream_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Withdraw an invitation (owner or admin); tokens already issued run out at their expiry."""
    await streams.access_stream_for_owner(session=session, stream_id=stream_id, actor=actor)
    await session.execute(delete(StreamGuest).where(StreamGuest.stream_id == stream_id, StreamGuest.user_id == user_id))


@dataclass(frozen=True, slots=True)
class RtcGrant:
    provider: Provider
    token: str
    channel: str
    uid: int | None
    identity: str
    app_id: str | None
    url: str | None
    expires_at: int
    role: Literal["host", "guest"]


async def issue_token(
    *, session: AsyncSession, actor: User, stream_id: uuid.UUID, provider: str, settings: RtcSettings
) -> RtcGrant:
    """A publisher token for the stream's co-host room: for its owner, an admin, or an invited guest."""
    if provider not in ("agora", "livekit"):
        raise InvalidInput("provider must be 'agora' or 'livekit'", code="invalid_provider")
    stream = await session.get(Stream, stream_id)
    if stream is None or stream.deleted_at is not None:
        raise NotFound("stream not found", code="stream_not_found")
    is_host = stream.owner_id == actor.id or actor.has_role("admin")
    if not is_host and await session.get(StreamGuest, (stream_id, actor.id)) is None:
        raise Forbidden("only the host and invited guests may join the co-host room", code="not_a_guest")
    ttl = settings.token_ttl_seconds
    room = f"stream-{stream_id}"
    role: Literal["host", "guest"] = "host" if is_host else "guest"
    expires = int(time.time()) + ttl
    if provider == "agora":
        if not settings.agora_app_id or settings.agora_app_certificate is None:
            raise Conflict(
                "Agora is not configured (RTC_AGORA_APP_ID, RTC_AGORA_APP_CERTIFICATE)", code="rtc_not_configured"
            )
        uid = rtc.agora_uid(actor.id)
        try:
            token = rtc.agora_rtc_token(
                app_id=settings.agora_app_id,
                app_certificate=settings.agora_app_certificate.get_secret_value(),
                channel=room,
                uid=uid,
                expire_seconds=ttl,
                privileges=rtc.agora_publisher_privileges(ttl),
            )
        except ValueError as exc:
            raise Conflict(f"Agora credentials are not valid: {exc}", code="rtc_not_configured") from exc
        return RtcGrant("agora", token, room, uid, str(actor.id), settings.agora_app_id, None, expires, role)
    if not settings.livekit_api_key or settings.livekit_api_secret is None:
        raise Conflict(
            "LiveKit is not configured (RTC_LIVEKIT_API_KEY, RTC_LIVEKIT_API_SECRET)", code="rtc_not_configured"
        )
    token = rtc.livekit_token(
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        identity=str(actor.id),
        name=actor.display_name or actor.username,
        room=room,
        ttl_seconds=ttl,
    )
    return RtcGrant("livekit", token, room, None, str(actor.id), None, settings.livekit_url, expires, role)
