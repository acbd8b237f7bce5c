"""Routes: /notifications — the inbox, read marks, preferences, push subscriptions and devices."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from halobuzz.accounts.deps import CurrentUser
from halobuzz.core.deps import PageDep, RuntimeDep, SessionDep
from halobuzz.core.errors import ServiceUnavailable
from halobuzz.notifications import catalog, service
from halobuzz.notifications.channels.webpush import check_subscription
from halobuzz.notifications.dispatch import channels_of
from halobuzz.notifications.schemas import (
    DeliveryOut,
    DeviceIn,
    DeviceOut,
    MarkReadIn,
    MarkReadOut,
    NotificationOut,
    NotificationPage,
    PreferencesIn,
    PreferencesOut,
    PushSubscriptionIn,
    PushSubscriptionOut,
    PushSubscriptionRef,
    QuietHours,
    UnreadCount,
    VapidKeyOut,
)

router = APIRouter(prefix="/notifications", tags=["notifications"])


def _out(row: object) -> NotificationOut:
    return NotificationOut.model_validate(row, from_attributes=True)


def _prefs_out(prefs: service.Preferences, rt: RuntimeDep) -> PreferencesOut:
    available = channels_of(rt).available()
    return PreferencesOut(
        types=prefs.types,
        quiet_hours=QuietHours(**prefs.quiet_hours) if prefs.quiet_hours else None,
        email_digest=prefs.email_digest,
        timezone=prefs.timezone,
        channels={c: c == catalog.IN_APP or c in available for c in catalog.CHANNELS},
    )


@router.get("", response_model=NotificationPage)
async def list_notifications(
    session: SessionDep,
    user: CurrentUser,
    page: PageDep,
    unread: Annotated[bool, Query(description="only unread ones")] = False,
) -> NotificationPage:
    """Your notifications, newest first, with how many are unread."""
    rows, cursor = await service.list_notifications(
        session=session, user=user, limit=page.limit, cursor=page.cursor, unread_only=unread
    )
    count = await service.unread_count(session=session, user_id=user.id)
    return NotificationPage(items=[_out(r) for r in rows], next_cursor=cursor, unread_count=count)


@router.get("/unread-count", response_model=UnreadCount)
async def unread_count(session: SessionDep, user: CurrentUser) -> UnreadCount:
    """How many of your notifications are unread."""
    return UnreadCount(unread_count=await service.unread_count(session=session, user_id=user.id))


@router.post("/read", response_model=MarkReadOut)
async def mark_read(body: MarkReadIn, session: SessionDep, user: CurrentUser) -> MarkReadOut:
    """Mark some (``{"ids": [...]}``) or all (``{"all": true}``) of your notifications read."""
    updated = await service.mark_read(session=session, user=user, ids=body.ids, all_=bool(body.all_))
    return MarkReadOut(updated=updated, unread_count=await service.unread_count(session=session, user_id=user.id))


@router.get("/preferences", response_model=PreferencesOut)
async def get_preferences(session: SessionDep, user: CurrentUser, rt: RuntimeDep) -> PreferencesOut:
    """Per type and channel, quiet hours (in your timezone) and the email digest."""
    return _prefs_out(await service.get_preferences(session=session, user=user), rt)


@router.patch("/preferences", response_model=PreferencesOut)
async def update_preferences(
    body: PreferencesIn, session: SessionDep, user: CurrentUser, rt: RuntimeDep
) -> PreferencesOut:
    """Change some of your choices; what is left out stays as it is."""
    prefs = await service.update_preferences(
        session=session,
        user=user,
        types={t: {str(c): on for c, on in per.items()} for t, per in body.types.items()} if body.types else None,
        quiet_hours=body.quiet_hours.model_dump() if body.quiet_hours else None,
        set_quiet_hours="quiet_hours" in body.model_fields_set,
        email_digest=body.email_digest,
    )
    return _prefs_out(prefs, rt)


@router.get("/vapid-public-key", response_model=VapidKeyOut)
async def vapid_public_key(rt: RuntimeDep) -> VapidKeyOut:
    """The key browsers subscribe with (``applicationServerKey``)."""
    channel = channels_of(rt).by_name[catalog.WEB_PUSH]
    keys = getattr(channel, "keys", None)
    if keys is None:
        raise ServiceUnavailable("web push is not configured on this server", code="web_push_unavailable")
    return VapidKeyOut(public_key=keys.public_key)


@router.get("/push-subscriptions", response_model=list[PushSubscriptionOut])
async def list_push_subscriptions(session: SessionDep, user: CurrentUser) -> list[PushSubscriptionOut]:
    """Your browsers' push subscriptions."""
    rows = await service.list_push_subscriptions(session=session, user=user)
    return [PushSubscriptionOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/push-subscriptions", response_model=PushSubscriptionOut, status_code=201)
async def add_push_subscription(
    body: PushSubscriptionIn,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    rt: RuntimeDep,
) -> PushSubscriptionOut:
    """Register this browser's push subscription (201 when new, 200 when it was known)."""
    if catalog.WEB_PUSH not in channels_of(rt).available():
        raise ServiceUnavailable("web push is not configured on this server", code="web_push_unavailable")
    check_subscription(
        endpoint=body.endpoint, p256dh=body.keys.p256dh, auth=body.keys.auth, production=rt.settings.env == "production"
    )
    row, created = await service.add_push_subscription(
        session=session,
        user=user,
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        user_agent=request.headers.get("user-agent", "")[:255],
    )
    if not created:
        response.status_code = 200
    return PushSubscriptionOut.model_validate(row, from_attributes=True)


@router.delete("/push-subscriptions", status_code=204)
async def remove_push_subscription(body: PushSubscriptionRef, session: SessionDep, user: CurrentUser) -> Response:
    """Unsubscribe by endpoint (what the browser knows)."""
    await service.remove_push_subscription(session=session, user=user, endpoint=body.endpoint)
    return Response(status_code=204)


@router.delete("/push-subscriptions/{subscription_id}", status_code=204)
async def remove_push_subscription_by_id(
    subscription_id: uuid.UUID, session: SessionDep, user: CurrentUser
) -> Response:
    """Unsubscribe by id."""
    await service.remove_push_subscription(session=session, user=user, subscription_id=subscription_id)
    return Response(status_code=204)


@router.get("/devices", response_model=list[DeviceOut])
async def list_devices(session: SessionDep, user: CurrentUser) -> list[DeviceOut]:
    """Your mobile devices registered for push."""
    return [
        DeviceOut.model_validate(d, from_attributes=True)
        for d in await service.list_devices(session=session, user=user)
    ]


@router.post("/devices", response_model=DeviceOut, status_code=201)
async def add_device(body: DeviceIn, response: Response, session: SessionDep, user: CurrentUser) -> DeviceOut:
    """Register a mobile app's FCM registration token (201 when new, 200 when it was known)."""
    row, created = await service.add_device(session=session, user=user, token=body.token, platform=body.platform)
    if not created:
        response.status_code = 200
    return DeviceOut.model_validate(row, from_attributes=True)


@router.delete("/devices/{device_id}", status_code=204)
async def remove_device(device_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    """Stop push to a device."""
    await service.remove_device(session=session, user=user, device_id=device_id)
    return Response(status_code=204)


@router.post("/{notification_id}/read", response_model=NotificationOut)
async def mark_one_read(notification_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> NotificationOut:
    """Mark one notification read."""
    return _out(await service.mark_one_read(session=session, user=user, notification_id=notification_id))


@router.get("/{notification_id}/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(notification_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> list[DeliveryOut]:
    """Where one notification went besides the inbox: each channel's delivery record."""
    rows = await service.list_deliveries(session=session, user=user, notification_id=notification_id)
    return [DeliveryOut.model_validate(r, from_attributes=True) for r in rows]


@router.delete("/{notification_id}", status_code=204)
async def delete_notification(notification_id: uuid.UUID, session: SessionDep, user: CurrentUser) -> Response:
    """Delete one notification."""
    await service.delete_notification(session=session, user=user, notification_id=notification_id)
    return Response(status_code=204)
