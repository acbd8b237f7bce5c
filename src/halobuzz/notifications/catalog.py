"""Notification types, channels and the default preferences (docs/notifications.md)."""

from __future__ import annotations

from typing import Final

IN_APP: Final = "in_app"
WEB_PUSH: Final = "web_push"
EMAIL: Final = "email"
SMS: Final = "sms"
MOBILE_PUSH: Final = "mobile_push"

CHANNELS: tuple[str, ...] = (IN_APP, WEB_PUSH, EMAIL, SMS, MOBILE_PUSH)
# Channels held back during quiet hours (in-app and email still arrive).
QUIET_CHANNELS: frozenset[str] = frozenset({WEB_PUSH, SMS, MOBILE_PUSH})
# Channels that go through the delivery queue (in-app is the stored row and the socket push).
DELIVERY_CHANNELS: tuple[str, ...] = (WEB_PUSH, EMAIL, SMS, MOBILE_PUSH)

STREAM_LIVE: Final = "stream_live"
NEW_FOLLOWER: Final = "new_follower"
GIFT_RECEIVED: Final = "gift_received"
PAYMENT_COMPLETED: Final = "payment_completed"
MODERATION: Final = "moderation"
RAID_INCOMING: Final = "raid_incoming"
SUBSCRIPTION_STARTED: Final = "subscription_started"

# type → channel → on by default.
DEFAULTS: dict[str, dict[str, bool]] = {
    STREAM_LIVE: {IN_APP: True, WEB_PUSH: True, EMAIL: False, SMS: False, MOBILE_PUSH: True},
    NEW_FOLLOWER: {IN_APP: True, WEB_PUSH: True, EMAIL: False, SMS: False, MOBILE_PUSH: True},
    GIFT_RECEIVED: {IN_APP: True, WEB_PUSH: True, EMAIL: False, SMS: False, MOBILE_PUSH: True},
    PAYMENT_COMPLETED: {IN_APP: True, WEB_PUSH: False, EMAIL: True, SMS: False, MOBILE_PUSH: False},
    MODERATION: {IN_APP: True, WEB_PUSH: False, EMAIL: True, SMS: False, MOBILE_PUSH: False},
    RAID_INCOMING: {IN_APP: True, WEB_PUSH: True, EMAIL: False, SMS: False, MOBILE_PUSH: True},
    SUBSCRIPTION_STARTED: {IN_APP: True, WEB_PUSH: False, EMAIL: True, SMS: False, MOBILE_PUSH: False},
}
TYPES: tuple[str, ...] = tuple(DEFAULTS)

# Choices a user cannot turn off: decisions about their account always reach the inbox.
LOCKED: frozenset[tuple[str, str]] = frozenset({(MODERATION, IN_APP)})


def enabled(overrides: dict[str, object] | None, type_: str, channel: str) -> bool:
    """Whether ``channel`` is on for ``type_`` given a user's stored overrides."""
    if (type_, channel) in LOCKED:
        return True
    if overrides:
        per_type = overrides.get(type_)
        if isinstance(per_type, dict):
            value = per_type.get(channel)
            if isinstance(value, bool):
                return value
    return DEFAULTS.get(type_, {}).get(channel, False)


def effective(overrides: dict[str, object] | None) -> dict[str, dict[str, bool]]:
    """Every type's channels with the user's overrides applied."""
    return {t: {c: enabled(overrides, t, c) for c in CHANNELS} for t in TYPES}
