"""Request and response bodies of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class UserOut(BaseModel):
    """A user as anyone may see them."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    username: str
    display_name: str
    bio: str
    avatar_url: str | None = None
    country: str | None = None
    language: str
    roles: list[str]
    follower_count: int
    following_count: int
    created_at: datetime


class MeOut(UserOut):
    """The signed-in user's own view, with private fields."""

    email: str
    phone: str | None = None
    timezone: str
    email_verified: bool
    two_factor_enabled: bool
    creator_status: str
    status: str
