"""Announcements other domains make to the rooms (call them after commit)."""

from __future__ import annotations

import uuid
from datetime import datetime

from halobuzz.core.runtime import Runtime
from halobuzz.economy.service import GiftReceipt
from halobuzz.economy.thrones import ThroneChange
from halobuzz.realtime.asgi import gateway_of
from halobuzz.realtime.gateway import stream_room


def stream_started(
    runtime: Runtime, *, stream_id: uuid.UUID, broadcast_id: uuid.UUID, title: str, started_at: datetime
) -> None:
    """``stream_started`` to the stream's room and its owner's connected followers; the viewers already
    waiting are counted afresh."""
    gateway = gateway_of(runtime)
    if gateway is not None:
        gateway.stream_started(
            stream_id=stream_id,
            payload={"stream_id": stream_id, "broadcast_id": broadcast_id, "title": title, "started_at": started_at},
        )


def stream_ended(runtime: Runtime, *, stream_id: uuid.UUID, broadcast_id: uuid.UUID | None, ended_at: datetime) -> None:
    """``stream_ended`` to the stream's room."""
    gateway = gateway_of(runtime)
    if gateway is not None:
        gateway.stream_ended(
            stream_id=stream_id, payload={"stream_id": stream_id, "broadcast_id": broadcast_id, "ended_at": ended_at}
        )


def gift_received(runtime: Runtime, receipt: GiftReceipt, *, sender_username: str) -> None:
    """``gift_received`` to the stream's room, once per gift (never for a replayed request)."""
    gateway = gateway_of(runtime)
    if gateway is not None:
        gateway.publish(
            stream_room(receipt.stream_id),
            "gift_received",
            {
                "id": receipt.id,
                "stream_id": receipt.stream_id,
                "sender": {"id": receipt.sender_id, "username": sender_username},
                "receiver_id": receipt.receiver_id,
                "gift": receipt.gift,
                "quantity": receipt.quantity,
                "coins": receipt.coins_spent,
            },
        )
        if receipt.throne is not None:
            gateway.publish(stream_room(receipt.stream_id), "throne_changed", receipt.throne.payload())


def throne_changed(runtime: Runtime, change: ThroneChange) -> None:
    """``throne_changed`` to the stream's room: a new top gifter (or none) holds its throne."""
    gateway = gateway_of(runtime)
    if gateway is not None:
        gateway.publish(stream_room(change.stream_id), "throne_changed", change.payload())


def raid(runtime: Runtime, *, stream_id: uuid.UUID, payload: dict[str, object]) -> None:
    """``raid`` to the raiding stream's room: where its viewers are sent next."""
    gateway = gateway_of(runtime)
    if gateway is not None:
        gateway.publish(stream_room(stream_id), "raid", payload)
