"""Request and response bodies of the streams and categories API.

Inputs are validated and normalised here (trimmed titles, lower-cased tags and codes), so the
service receives clean values.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from halobuzz.streams.models import Broadcast, Category
from halobuzz.streams.service import LiveRow, StreamView

MAX_TAGS = 10
MAX_TAG_LENGTH = 30
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
LANGUAGE_PATTERN = r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})?$"
REGION_PATTERN = r"^[a-z][a-z0-9-]{1,15}$"


def _no_control_chars(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\n\t" for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _single_line(value: str) -> str:
    if "\n" in value or "\t" in value:
        raise ValueError("must be a single line")
    return _no_control_chars(value)


def _normalise_tags(value: list[str]) -> list[str]:
    """Lower-cased, whitespace-collapsed, leading '#' dropped, duplicates removed (first kept)."""
    out: list[str] = []
    for raw in value:
        tag = " ".join(raw.strip().lstrip("#").split()).lower()
        if not tag:
            raise ValueError("tags must not be empty")
        if len(tag) > MAX_TAG_LENGTH:
            raise ValueError(f"each tag is at most {MAX_TAG_LENGTH} characters")
        _single_line(tag)
        if tag not in out:
            out.append(tag)
    return out


def _code(pattern: str, example: str) -> Callable[[str], str]:
    """A validator of short codes: trimmed, lower-cased, then matched against ``pattern``."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        value = value.strip().lower()
        if not regex.fullmatch(value):
            raise ValueError(f"must be a code like {example}")
        return value

    return check


Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=140), AfterValidator(_single_line)
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2000), AfterValidator(_no_control_chars)
]
Tags = Annotated[
    list[Annotated[str, StringConstraints(max_length=64)]],
    Field(max_length=MAX_TAGS),
    AfterValidator(_normalise_tags),
]
Language = Annotated[str, StringConstraints(max_length=16), AfterValidator(_code(LANGUAGE_PATTERN, "'en' or 'pt-br'"))]
Region = Annotated[
    str, StringConstraints(max_length=16), AfterValidator(_code(REGION_PATTERN, "'np', 'in' or 'global'"))
]
SearchText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), AfterValidator(_single_line)]
CategoryRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Slug = Annotated[
    str, StringConstraints(min_length=2, max_length=40), AfterValidator(_code(SLUG_PATTERN, "'live-music'"))
]
CategoryName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60), AfterValidator(_single_line)
]
CategoryDescription = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(_no_control_chars)
]
Position = Annotated[int, Field(ge=0, le=1_000_000)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamCreate(_Input):
    title: Title
    description: Description = ""
    category: CategoryRef | None = Field(None, description="category slug or id")
    tags: Tags = Field(default_factory=list)
    language: Language | None = Field(None, description="language code (default: yours)")
    audio_only: StrictBool = False
    region: Region = "global"
    scheduled_start_at: AwareDatetime | None = None


_NOT_NULLABLE = ("title", "description", "tags", "language", "audio_only", "region")


class StreamUpdate(_Input):
    """Only the fields sent change; ``category`` and ``scheduled_start_at`` may be set to null."""

    title: Title | None = None
    description: Description | None = None
    category: CategoryRef | None = None
    tags: Tags | None = None
    language: Language | None = None
    audio_only: StrictBool | None = None
    region: Region | None = None
    scheduled_start_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _not_null(self) -> Self:
        for name in _NOT_NULLABLE:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class OwnerOut(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str


class CurrentBroadcastOut(BaseModel):
    id: uuid.UUID
    started_at: datetime
    peak_viewers: int


class StreamOut(BaseModel):
    id: uuid.UUID
    title: str
    description: str
    status: Literal["offline", "live"]
    viewer_count: int
    like_count: int
    owner: OwnerOut
    category: str | None = Field(description="category slug")
    tags: list[str]
    auto_tags: list[str] = Field(default_factory=list, description="topics found in the title and description")
    language: str
    audio_only: bool
    region: str
    scheduled_start_at: datetime | None
    current_broadcast: CurrentBroadcastOut | None
    created_at: datetime

    @classmethod
    def of(cls, view: StreamView, **extra: Any) -> Self:
        s, b = view.stream, view.broadcast
        return cls(
            **extra,
            id=s.id,
            title=s.title,
            description=s.description,
            status=s.status,
            viewer_count=s.viewer_count,
            like_count=s.like_count,
            owner=OwnerOut(id=view.owner.id, username=view.owner.username, display_name=view.owner.display_name),
            category=view.category_slug,
            tags=list(s.tags),
            auto_tags=list(s.auto_tags or []),
            language=s.language,
            audio_only=s.audio_only,
            region=s.region,
            scheduled_start_at=s.scheduled_start_at,
            current_broadcast=(
                CurrentBroadcastOut(id=b.id, started_at=b.started_at, peak_viewers=b.peak_viewers) if b else None
            ),
            created_at=s.created_at,
        )


class StreamCreatedOut(StreamOut):
    stream_key: str = Field(description="the secret ingest key; shown only now and on rotation")


class StreamKeyOut(BaseModel):
    stream_key: str = Field(description="the new secret ingest key; the previous one no longer works")


class BroadcastOut(BaseModel):
    id: uuid.UUID
    title: str
    started_at: datetime
    ended_at: datetime | None
    peak_viewers: int
    duration_seconds: int | None

    @classmethod
    def of(cls, row: Broadcast) -> BroadcastOut:
        return cls(
            id=row.id,
            title=row.title,
            started_at=row.started_at,
            ended_at=row.ended_at,
            peak_viewers=row.peak_viewers,
            duration_seconds=row.duration_seconds,
        )


class LiveStreamOut(BaseModel):
    """One entry of the live listing."""

    id: uuid.UUID
    title: str
    status: Literal["offline", "live"]
    viewer_count: int
    like_count: int
    owner: OwnerOut
    category: str | None = Field(description="category slug")
    tags: list[str]
    language: str
    audio_only: bool
    region: str
    started_at: datetime | None

    @classmethod
    def of(cls, row: LiveRow) -> LiveStreamOut:
        return cls(
            id=row.id,
            title=row.title,
            status=row.status,
            viewer_count=row.viewer_count,
            like_count=row.like_count,
            owner=OwnerOut(id=row.owner_id, username=row.owner_username, display_name=row.owner_display_name),
            category=row.category_slug,
            tags=list(row.tags),
            language=row.language,
            audio_only=row.audio_only,
            region=row.region,
            started_at=row.started_at,
        )


LiveSort = Literal["viewers", "recent"]


class CategoryCreate(_Input):
    slug: Slug
    name: CategoryName
    description: CategoryDescription = ""
    position: Position = 0


class CategoryUpdate(_Input):
    name: CategoryName | None = None
    description: CategoryDescription | None = None
    position: Position | None = None
    is_active: StrictBool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> Self:
        for name in ("name", "description", "position", "is_active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    name: str
    description: str
    position: int
    is_active: bool
    created_at: datetime

    @classmethod
    def of(cls, row: Category) -> CategoryOut:
        return cls.model_validate(row)


class CategoryList(BaseModel):
    items: list[CategoryOut]


__all__ = [
    "LANGUAGE_PATTERN",
    "REGION_PATTERN",
    "SLUG_PATTERN",
    "BroadcastOut",
    "CategoryCreate",
    "CategoryList",
    "CategoryOut",
    "CategoryUpdate",
    "LiveSort",
    "LiveStreamOut",
    "StreamCreate",
    "StreamCreatedOut",
    "StreamKeyOut",
    "StreamOut",
    "StreamUpdate",
]
