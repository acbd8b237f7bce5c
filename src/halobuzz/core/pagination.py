"""Cursor pagination: ``?limit=&cursor=`` → ``{items, next_cursor}``.

A cursor is an opaque, URL-safe encoding of the sort key of the last item returned; callers
decode it into typed values and filter with a keyset condition (no OFFSET scans).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel

from halobuzz.core.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*values: Any) -> str:
    """An opaque cursor holding ``values`` (datetimes, UUIDs, ints, strings)."""
    out = []
    for v in values:
        if isinstance(v, datetime):
            out.append({"t": v.isoformat()})
        elif isinstance(v, uuid.UUID):
            out.append({"u": str(v)})
        else:
            out.append(v)
    return base64.urlsafe_b64encode(orjson.dumps(out)).decode().rstrip("=")


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The typed values of a cursor made by ``encode_cursor``; ``InvalidInput`` when it is not one."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("shape")
        values: list[Any] = []
        for kind, item in zip(kinds, raw, strict=True):
            if kind is datetime:
                values.append(datetime.fromisoformat(item["t"]))
            elif kind is uuid.UUID:
                values.append(uuid.UUID(item["u"]))
            elif (kind is int and isinstance(item, int) and not isinstance(item, bool)) or (
                kind is str and isinstance(item, str)
            ):
                values.append(item)
            else:
                raise ValueError("type")
        return tuple(values)
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError) as exc:
        raise InvalidInput("cursor is not valid; use next_cursor from a previous page", code="invalid_cursor") from exc


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1 or limit > MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
    return limit


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Page",
    "PageParams",
    "clamp_limit",
    "decode_cursor",
    "encode_cursor",
]
