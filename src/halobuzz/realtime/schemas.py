"""Payloads of the client → server Socket.IO events (validated like HTTP bodies)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class StreamRef(_In):
    stream_id: uuid.UUID


class JoinStreamIn(StreamRef):
    # Where the client's copy of the room ends: the epoch and last seq it saw.
    epoch: StrictStr | None = Field(None, max_length=64)
    last_seq: StrictInt | None = Field(None, ge=0)


class SendMessageIn(StreamRef):
    # Length and characters are checked after trimming (chat.service.normalize_text).
    text: StrictStr = Field(max_length=4000)


class SendGiftIn(StreamRef):
    gift_id: uuid.UUID
    quantity: StrictInt = Field(1, ge=1)
    # The client's id for this attempt: a retry with the same key is answered, not charged again.
    idempotency_key: StrictStr = Field(min_length=1, max_length=255)
