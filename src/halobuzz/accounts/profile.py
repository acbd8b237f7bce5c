"""Profiles: finding a user by id or username, reading a profile with the caller's relationship to
it, editing one's own profile, and avatars (validated, re-encoded, stored by content hash)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
import uuid
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import Block, Follow, User, UserStatus
from halobuzz.config import MediaLimits
from halobuzz.core.db import after_commit, after_transaction
from halobuzz.core.errors import InvalidInput, NotFound, PayloadTooLarge, Unauthorized
from halobuzz.core.ids import parse_uuid
from halobuzz.core.images import normalize_avatar
from halobuzz.core.storage import Storage

ME = "me"
BIO_MAX_LENGTH = 500
DISPLAY_NAME_MAX_LENGTH = 60
AVATAR_CONTENT_TYPE = "image/webp"
# Avatar keys carry a content hash, so a key's bytes never change: clients may cache them for good.
AVATAR_CACHE_CONTROL = "public, max-age=31536000, immutable"
HIDDEN_STATUSES = (UserStatus.BANNED.value, UserStatus.DELETED.value)

# ISO 3166-1 alpha-2: every officially assigned code.
COUNTRY_CODES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
    BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
    ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
    IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
    NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
    SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
    VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 - one compact table
)
# A BCP 47 primary language subtag, optionally with a script (zh-Hans) or region (en-US, es-419).
_LANGUAGE = re.compile(r"^([a-z]{2,3})(?:-([A-Z][a-z]{3}|[A-Z]{2}|[0-9]{3}))?$")


# --- validation --------------------------------------------------------------------------------


def _has_control_chars(value: str, allowed: str = "") -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf") and ch not in allowed for ch in value)


def normalize_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased; ``ValueError`` for anything else."""
    code = value.strip().upper()
    if code not in COUNTRY_CODES:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code such as NP, IN or US")
    return code


def normalize_language(value: str) -> str:
    """A short BCP 47 tag in canonical case (``en``, ``ne``, ``en-US``, ``zh-Hans``)."""
    primary, _, rest = value.strip().replace("_", "-").partition("-")
    tag = primary.lower()
    if rest:
        tag += "-" + (rest.title() if len(rest) == 4 else rest.upper())
    if len(tag) > 8 or not _LANGUAGE.match(tag):
        raise ValueError("must be a language code such as en, ne, hi, ur, bn or en-US")
    return tag


@lru_cache(maxsize=1)
def _time_zones() -> dict[str, str]:
    names = zoneinfo.available_timezones() - {"localtime", "Factory"}
    return {name.lower(): name for name in names}


def normalize_timezone(value: str) -> str:
    """A valid IANA time zone name in its canonical spelling (``asia/kathmandu`` → ``Asia/Kathmandu``)."""
    name = _time_zones().get(value.strip().lower())
    if name is None:
        raise ValueError("must be an IANA time zone such as Asia/Kathmandu or UTC")
    return name


def normalize_bio(value: str) -> str:
    """A trimmed bio; line breaks and tabs are kept, other control characters refused."""
    text = value.strip()
    if len(text) > BIO_MAX_LENGTH:
        raise ValueError(f"must be at most {BIO_MAX_LENGTH} characters")
    if _has_control_chars(text, allowed="\n\r\t"):
        raise ValueError("must not contain control characters")
    return text


def normalize_display_name(value: str) -> str:
    """A trimmed, non-empty display name without control characters."""
    text = value.strip()
    if not 1 <= len(text) <= DISPLAY_NAME_MAX_LENGTH:
        raise ValueError(f"must be 1 to {DISPLAY_NAME_MAX_LENGTH} characters")
    if _has_control_chars(text):
        raise ValueError("must not contain control characters")
    return text


_NORMALIZERS = {
    "display_name": normalize_display_name,
    "bio": normalize_bio,
    "country": normalize_country,
    "language": normalize_language,
    "timezone": normalize_timezone,
}
# Fields that may be cleared with null, and the value that clears them.
_NULLABLE: dict[str, Any] = {"bio": "", "country": None}


def _validated(changes: Mapping[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    problems: list[dict[str, str]] = []
    for field, value in changes.items():
        normalize = _NORMALIZERS.get(field)
        if normalize is None:
            problems.append({"field": field, "message": "cannot be changed here"})
        elif value is None:
            if field in _NULLABLE:
                clean[field] = _NULLABLE[field]
            else:
                problems.append({"field": field, "message": "must not be null"})
        elif not isinstance(value, str):
            problems.append({"field": field, "message": "must be a string"})
        else:
            try:
                clean[field] = normalize(value)
            except ValueError as exc:
                problems.append({"field": field, "message": str(exc)})
    if problems:
        first = problems[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", details=problems)
    return clean


# --- look-ups ----------------------------------------------------------------------------------


def ref_condition(ref: str) -> ColumnElement[bool]:
    """The WHERE condition selecting the user ``ref`` names: a UUID, else a username (any case)."""
    user_id = parse_uuid(ref)
    if user_id is not None:
        return User.id == user_id
    return User.username_key == ref.strip().lower()


def _not_found(ref: str) -> NotFound:
    return NotFound(f"no user {ref!r}", code="user_not_found")


async def get_user_by_ref(
    *, session: AsyncSession, ref: str, viewer: User | None = None, include_banned: bool = False
) -> User:
    """The user ``ref`` names (id, username, or ``me`` for ``viewer``); banned and deleted users are not found."""
    if ref == ME:
        if viewer is None:
            raise Unauthorized("sign in first: 'me' names the signed-in user", code="not_authenticated")
        return viewer
    hidden = (UserStatus.DELETED.value,) if include_banned else HIDDEN_STATUSES
    user = await session.scalar(select(User).where(ref_condition(ref), User.status.not_in(hidden)))
    if user is None:
        raise _not_found(ref)
    return user


@dataclass(frozen=True, slots=True)
class ProfileView:
    user: User
    is_following: bool | None = None
    is_followed_by: bool | None = None
    is_blocked: bool | None = None


async def get_profile(*, session: AsyncSession, ref: str, viewer: User | None) -> ProfileView:
    """A visible user's profile and, for a signed-in viewer, how the two are related; one query."""
    if ref == ME:
        if viewer is None:
            raise Unauthorized("sign in first: 'me' names the signed-in user", code="not_authenticated")
        return ProfileView(viewer, False, False, False)
    where = (ref_condition(ref), User.status.not_in(HIDDEN_STATUSES))
    if viewer is None:
        user = await session.scalar(select(User).where(*where))
        if user is None:
            raise _not_found(ref)
        return ProfileView(user)
    row = (
        await session.execute(
            select(
                User,
                exists().where(Follow.follower_id == viewer.id, Follow.followee_id == User.id),
                exists().where(Follow.follower_id == User.id, Follow.followee_id == viewer.id),
                exists().where(Block.blocker_id == viewer.id, Block.blocked_id == User.id),
            ).where(*where)
        )
    ).first()
    if row is None:
        raise _not_found(ref)
    return ProfileView(row[0], bool(row[1]), bool(row[2]), bool(row[3]))


# --- edits -------------------------------------------------------------------------------------


async def update_profile(*, session: AsyncSession, actor: User, changes: Mapping[str, Any]) -> User:
    """Apply profile ``changes`` (display_name, bio, country, language, timezone) to ``actor``; all or nothing."""
    clean = _validated(changes)
    for field, value in clean.items():
        setattr(actor, field, value)
    if clean:
        await session.flush()
    return actor


async def prepare_avatar(*, data: bytes, limits: MediaLimits) -> bytes:
    """Uploaded bytes checked and re-encoded as the avatar WebP (in a worker thread)."""
    if len(data) > limits.max_bytes:
        raise PayloadTooLarge(f"the avatar file is larger than {limits.max_bytes} bytes", code="avatar_too_large")
    if not data:
        raise InvalidInput("the uploaded file is empty", code="invalid_image")
    return await asyncio.to_thread(normalize_avatar, data, size=limits.size, max_side=limits.max_pixels)


def avatar_key(user_id: uuid.UUID, image: bytes) -> str:
    """Where an avatar is stored: by owner and content hash, so identical uploads share one file."""
    return f"avatars/{user_id}/{hashlib.sha256(image).hexdigest()[:32]}.webp"


async def _swap_avatar(session: AsyncSession, storage: Storage, actor: User, new_key: str | None) -> None:
    # Lock the row (PostgreSQL) and read the key committed now, not the one loaded with the
    # request: of two racing uploads, the second must delete the first's file, not the original.
    old_key = await session.scalar(select(User.avatar_key).where(User.id == actor.id).with_for_update())
    actor.avatar_key = new_key
    await session.flush()
    state = {"committed": False}

    async def drop_old() -> None:
        state["committed"] = True
        if old_key and old_key != new_key:
            await storage.delete(old_key)

    async def drop_new_unless_committed() -> None:
        if not state["committed"] and new_key and new_key != old_key:
            await storage.delete(new_key)

    after_commit(session, drop_old)
    after_transaction(session, drop_new_unless_committed)


async def set_avatar(*, session: AsyncSession, storage: Storage, actor: User, image: bytes) -> User:
    """Store ``image`` (from ``prepare_avatar``) as ``actor``'s avatar; the previous file is deleted after commit."""
    key = avatar_key(actor.id, image)
    await storage.put(key, image, AVATAR_CONTENT_TYPE, cache_control=AVATAR_CACHE_CONTROL)
    await _swap_avatar(session, storage, actor, key)
    return actor


async def remove_avatar(*, session: AsyncSession, storage: Storage, actor: User) -> User:
    """Clear ``actor``'s avatar; its file is deleted after commit."""
    await _swap_avatar(session, storage, actor, None)
    return actor
