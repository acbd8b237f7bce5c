"""Request and response bodies of the notifications API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator


class NotificationOut(BaseModel):
    id: uuid.UUID
    type: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int


class UnreadCount(BaseModel):
    unread_count: int


class MarkReadIn(BaseModel):
    """Either ``{"ids": [...]}`` or ``{"all": true}``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    ids: list[uuid.UUID] | None = Field(None, min_length=1, max_length=500)
    all_: StrictBool | None = Field(None, alias="all")

    @model_validator(mode="after")
    def _one_of(self) -> MarkReadIn:
        if self.ids is not None and self.all_ is not None:
            raise ValueError('give either "ids" or "all": true, not both')
        if self.ids is None and self.all_ is not True:
            raise ValueError('give "ids" (a list of notification ids) or "all": true')
        return self


class MarkReadOut(BaseModel):
    updated: int
    unread_count: int


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time HH:MM")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time HH:MM")


Channel = Literal["in_app", "web_push", "email", "sms", "mobile_push"]


class PreferencesIn(BaseModel):
    """Only what changes: ``types`` merges per type and channel; ``quiet_hours: null`` clears them."""

    model_config = ConfigDict(extra="forbid")

    types: dict[str, dict[Channel, StrictBool]] | None = None
    quiet_hours: QuietHours | None = None
    email_digest: StrictBool | None = None


class PreferencesOut(BaseModel):
    types: dict[str, dict[str, bool]]
    quiet_hours: QuietHours | None
    email_digest: bool
    timezone: str
    channels: dict[str, bool] = Field(description="which channels this server can deliver on")


class PushKeys(BaseModel):
    p256dh: str = Field(min_length=1, max_length=200)
    auth: str = Field(min_length=1, max_length=100)


class PushSubscriptionIn(BaseModel):
    """A browser's ``PushSubscription.toJSON()``."""

    endpoint: str = Field(min_length=1, max_length=1000)
    keys: PushKeys
    expirationTime: int | None = None  # the browser's field name


class PushSubscriptionOut(BaseModel):
    id: uuid.UUID
    endpoint: str
    created_at: datetime


class PushSubscriptionRef(BaseModel):
    endpoint: str = Field(min_length=1, max_length=1000)


class VapidKeyOut(BaseModel):
    public_key: str = Field(description="applicationServerKey for pushManager.subscribe (base64url)")


class DeviceIn(BaseModel):
    token: str = Field(min_length=1, max_length=4096, description="the FCM registration token")
    platform: Literal["android", "ios", "web"] = "android"


class DeviceOut(BaseModel):
    id: uuid.UUID
    platform: str
    created_at: datetime


class DeliveryOut(BaseModel):
    id: uuid.UUID
    channel: str
    status: str
    attempts: int
    next_attempt_at: datetime
    held_until: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
