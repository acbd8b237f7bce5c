"""Request and response bodies of the profile, follow and block routes (``/users``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from halobuzz.accounts import profile
from halobuzz.accounts.schemas import DisplayName, UserOut, user_out
from halobuzz.core.storage import Storage

Country = Annotated[
    str,
    Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2 code, e.g. NP, IN", examples=["NP"]),
    AfterValidator(profile.normalize_country),
]
Language = Annotated[
    str,
    Field(
        min_length=2, max_length=8, description="BCP 47 language tag, e.g. en, ne, hi, ur, bn, en-US", examples=["ne"]
    ),
    AfterValidator(profile.normalize_language),
]
TimeZone = Annotated[
    str,
    Field(min_length=1, max_length=64, description="IANA time zone, e.g. Asia/Kathmandu", examples=["Asia/Kathmandu"]),
    AfterValidator(profile.normalize_timezone),
]
Bio = Annotated[str, Field(max_length=profile.BIO_MAX_LENGTH), AfterValidator(profile.normalize_bio)]


class ProfileUpdateIn(BaseModel):
    """The fields of ``PATCH /users/me``; absent fields stay as they are, ``country: null`` clears it."""

    model_config = ConfigDict(extra="forbid")

    display_name: DisplayName | None = None
    bio: Bio | None = None
    country: Country | None = None
    language: Language | None = None
    timezone: TimeZone | None = None


class ProfileOut(UserOut):
    """A user as the caller sees them: ``is_*`` describe the caller's relationship (null when anonymous)."""

    is_following: bool | None = Field(None, description="the caller follows this user")
    is_followed_by: bool | None = Field(None, description="this user follows the caller")
    is_blocked: bool | None = Field(None, description="the caller has blocked this user")


def profile_out(view: profile.ProfileView, storage: Storage) -> ProfileOut:
    """The response body of ``GET /users/{id_or_username}``."""
    public = user_out(view.user, storage)
    return ProfileOut.model_construct(
        public.model_fields_set | {"is_following", "is_followed_by", "is_blocked"},
        **dict(public),
        is_following=view.is_following,
        is_followed_by=view.is_followed_by,
        is_blocked=view.is_blocked,
    )


class FollowOut(BaseModel):
    user_id: uuid.UUID
    following: bool = Field(description="the caller follows the user now")
    follower_count: int = Field(description="the user's follower count after this request")


class BlockOut(BaseModel):
    user_id: uuid.UUID
    blocked: bool = Field(description="the caller blocks the user now")
