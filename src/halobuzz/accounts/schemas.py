"""Request and response bodies of the accounts API.

Inputs are validated and normalised here (trimmed strings, lower-cased emails), so services
receive clean values. The password policy needs settings and lives in the service.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StrictBool, StringConstraints

from halobuzz.accounts.models import User
from halobuzz.core.storage import Storage

USERNAME_PATTERN = r"^[A-Za-z0-9_]{3,30}$"
# E.164: a plus sign, a country code that does not start with 0, at most 15 digits in all.
PHONE_PATTERN = r"^\+[1-9][0-9]{1,14}$"
PASSWORD_MAX_LENGTH = 256


def _no_control_chars(value: str) -> str:
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _lower(value: str) -> str:
    return value.lower()


Username = Annotated[
    str,
    StringConstraints(pattern=USERNAME_PATTERN),
    Field(description="3-30 letters, digits or underscores; unique ignoring case", examples=["night_owl"]),
]
Email = Annotated[EmailStr, AfterValidator(_lower), Field(description="stored lower-cased")]
Phone = Annotated[str, StringConstraints(pattern=PHONE_PATTERN), Field(description="E.164, e.g. +9779812345678")]
DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60), AfterValidator(_no_control_chars)
]
Password = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
# A 6-digit TOTP code, or a recovery code ("xxxxx-xxxxx") in its place.
Otp = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
OpaqueToken = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=512)]


# --- users -------------------------------------------------------------------------------------


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


def _public_fields(user: User, storage: Storage) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "bio": user.bio,
        "avatar_url": storage.url(user.avatar_key) if user.avatar_key else None,
        "country": user.country,
        "language": user.language,
        "roles": list(user.roles),
        "follower_count": user.follower_count,
        "following_count": user.following_count,
        "created_at": user.created_at,
    }


def user_out(user: User, storage: Storage) -> UserOut:
    """The public view of ``user``."""
    return UserOut.model_validate(_public_fields(user, storage))


def me_out(user: User, storage: Storage) -> MeOut:
    """``user``'s own view of their account."""
    return MeOut.model_validate(
        {
            **_public_fields(user, storage),
            "email": user.email,
            "phone": user.phone,
            "timezone": user.timezone,
            "email_verified": user.email_verified_at is not None,
            "two_factor_enabled": user.totp_enabled_at is not None,
            "creator_status": user.creator_status,
            "status": user.status,
        }
    )


# --- sign-up, sign-in, tokens ------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(_In):
    username: Username
    email: Email
    password: Password
    phone: Phone | None = None
    display_name: DisplayName | None = None


class LoginIn(_In):
    login: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=254),
        AfterValidator(_no_control_chars),
        Field(description="username or email"),
    ]
    password: Password
    otp: Otp | None = Field(None, description="the 6-digit code of the authenticator app, or a recovery code")


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int = Field(description="seconds until the access token expires")


class RefreshIn(_In):
    refresh_token: OpaqueToken


class LogoutIn(_In):
    all: StrictBool = Field(False, description="end every sign-in session of the account, not only this one")


class TokenIn(_In):
    token: OpaqueToken


class EmailVerifiedOut(BaseModel):
    email: str
    email_verified: bool


class PasswordResetRequestIn(_In):
    email: Email


class AcceptedOut(BaseModel):
    message: str


class PasswordResetConfirmIn(_In):
    token: OpaqueToken
    new_password: Password


# --- account security --------------------------------------------------------------------------


class PasswordChangeIn(_In):
    current_password: Password
    new_password: Password


class SessionOut(BaseModel):
    id: uuid.UUID
    device: str
    ip: str | None
    created_at: datetime
    last_seen_at: datetime
    current: bool


class TotpSetupOut(BaseModel):
    secret: str = Field(description="base32 secret to type into an authenticator app")
    otpauth_uri: str = Field(description="the same secret as an otpauth:// URI (for a QR code)")


class TotpConfirmIn(_In):
    otp: Otp


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="each works once in place of a code; shown only now")


class TotpDisableIn(_In):
    password: Password
    otp: Otp
