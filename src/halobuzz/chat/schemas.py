"""Request and response bodies of the chat API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints, model_validator

from halobuzz.chat.models import ChatBan, ChatModerator
from halobuzz.chat.service import ChatModes

MAX_SLOW_MODE_SECONDS = 24 * 3600
MAX_FOLLOWERS_ONLY_MINUTES = 90 * 24 * 60

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatUserOut(BaseModel):
    id: uuid.UUID
    username: str


class ChatMessageOut(BaseModel):
    id: uuid.UUID
    stream_id: uuid.UUID
    user: ChatUserOut
    text: str
    epoch: str
    seq: int
    created_at: datetime


class ChatPage(BaseModel):
    items: list[ChatMessageOut]
    next_cursor: str | None = None


class ChatModesOut(BaseModel):
    slow_mode_seconds: int = Field(description="0: off; N: one message per N seconds per user")
    followers_only_minutes: int | None = Field(description="null: off; N: followers of at least N minutes")
    subscribers_only: bool
    emote_only: bool

    @classmethod
    def of(cls, modes: ChatModes) -> Self:
        return cls(**modes.as_dict())


class ChatModesIn(_In):
    """Only the fields given change."""

    slow_mode_seconds: StrictInt | None = Field(None, ge=0, le=MAX_SLOW_MODE_SECONDS)
    followers_only_minutes: StrictInt | None = Field(None, ge=0, le=MAX_FOLLOWERS_ONLY_MINUTES)
    subscribers_only: StrictBool | None = None
    emote_only: StrictBool | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one mode to change")
        for name in ("slow_mode_seconds", "subscribers_only", "emote_only"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} must not be null")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class TimeoutIn(_In):
    user_id: uuid.UUID
    duration_seconds: StrictInt = Field(ge=1, description="how long, in seconds (up to the configured maximum)")
    reason: Reason = ""


class BanIn(_In):
    user_id: uuid.UUID
    reason: Reason = ""


class ChatBanOut(BaseModel):
    stream_id: uuid.UUID
    user: ChatUserOut
    until: datetime | None = Field(description="null: banned until lifted; otherwise a timeout")
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, row: ChatBan, username: str) -> Self:
        return cls(
            stream_id=row.stream_id,
            user=ChatUserOut(id=row.user_id, username=username),
            until=row.until,
            reason=row.reason,
            created_at=row.created_at,
        )


class ChatBanList(BaseModel):
    items: list[ChatBanOut]


class ChatModeratorOut(BaseModel):
    stream_id: uuid.UUID
    user: ChatUserOut
    created_at: datetime

    @classmethod
    def of(cls, row: ChatModerator, username: str) -> Self:
        return cls(
            stream_id=row.stream_id, user=ChatUserOut(id=row.user_id, username=username), created_at=row.created_at
        )


class ChatModeratorList(BaseModel):
    items: list[ChatModeratorOut]
