"""Request and response bodies of the payments API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class IntentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    package_id: uuid.UUID
    provider: Annotated[str, StringConstraints(pattern=r"^(sandbox|stripe|esewa|khalti)$")]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class IntentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str
    provider: str
    package_id: uuid.UUID
    currency: str
    amount: int
    coins: int
    created_at: datetime
    updated_at: datetime
    next_action: dict[str, Any] | None = None


class AdminIntentOut(IntentOut):
    """A payment as administrators see it: with its buyer."""

    user_id: uuid.UUID
    username: str = ""
    provider_reference: str | None = None
    transaction_id: uuid.UUID | None = None


class AdminIntentPage(BaseModel):
    items: list[AdminIntentOut]
    next_cursor: str | None = None


class WebhookOut(BaseModel):
    received: bool
    intent_id: uuid.UUID | None = None
    status: str | None = None


class ReconciliationOut(BaseModel):
    ok: bool
    accounts_checked: int
    transactions_checked: int
    mismatches: list[dict[str, Any]]
    transactions_unbalanced: list[dict[str, Any]]
    negative_balances: list[dict[str, Any]]
    provider_totals: list[dict[str, Any]]
    clearing_mismatches: list[dict[str, Any]]
    coins_in_wallets: int


class RefundIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class RefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    intent_id: uuid.UUID
    transaction_id: uuid.UUID
    source: str
    reason: str
    amount: int
    coins_clawed_back: int
    coins_shortfall: int
    provider_refund_id: str | None
    created_at: datetime
