"""Request and response bodies of the wallet, coin package and gift API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
PackageName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Rarity = Annotated[str, StringConstraints(pattern=r"^(common|rare|epic|legendary)$")]
AssetUrl = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500, pattern=r"^(https?://|/)\S*$|^$")]
Coins = Annotated[int, Field(ge=1, le=10**12)]
MinorUnits = Annotated[int, Field(ge=1, le=10**12)]


class WalletOut(BaseModel):
    user_id: uuid.UUID
    balance: int
    earnings_balance: int
    currency: str = "COIN"


class WalletEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    transaction_id: uuid.UUID
    kind: str
    account: str
    amount: int
    unit: str
    balance_after: int
    created_at: datetime
    metadata: dict[str, Any]


class WalletEntryPage(BaseModel):
    items: list[WalletEntryOut]
    next_cursor: str | None = None


class CoinPackageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    coins: int
    bonus_coins: int
    prices: dict[str, int]
    position: int
    is_active: bool


class CoinPackageList(BaseModel):
    items: list[CoinPackageOut]


class CoinPackageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PackageName
    coins: Coins
    bonus_coins: Annotated[int, Field(ge=0, le=10**12)] = 0
    prices: Annotated[dict[Currency, MinorUnits], Field(min_length=1, max_length=20)]
    position: Annotated[int, Field(ge=0, le=10_000)] = 0
    is_active: bool = True


class CoinPackagePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PackageName | None = None
    coins: Coins | None = None
    bonus_coins: Annotated[int, Field(ge=0, le=10**12)] | None = None
    prices: Annotated[dict[Currency, MinorUnits], Field(min_length=1, max_length=20)] | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None
    is_active: bool | None = None


class GiftOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    coin_price: int
    animation_url: str
    rarity: str
    available_from: datetime | None
    available_until: datetime | None
    position: int
    is_active: bool
    festival_id: uuid.UUID | None = None


class GiftList(BaseModel):
    items: list[GiftOut]


class GiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    coin_price: Coins
    animation_url: AssetUrl = ""
    rarity: Rarity = "common"
    available_from: AwareDatetime | None = None
    available_until: AwareDatetime | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] = 0
    is_active: bool = True
    festival_id: uuid.UUID | None = None


class GiftPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    coin_price: Coins | None = None
    animation_url: AssetUrl | None = None
    rarity: Rarity | None = None
    available_from: AwareDatetime | None = None
    available_until: AwareDatetime | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None
    is_active: bool | None = None
    festival_id: uuid.UUID | None = None


MAX_GIFT_QUANTITY = 1000  # per request; EconomySettings.max_gift_quantity may allow fewer


class SendGiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gift_id: uuid.UUID
    quantity: Annotated[int, Field(ge=1, le=MAX_GIFT_QUANTITY)] = 1


class GiftBrief(BaseModel):
    id: uuid.UUID
    name: str
    coin_price: int
    animation_url: str
    rarity: str


class GiftReceiptOut(BaseModel):
    id: uuid.UUID
    gift: GiftBrief
    quantity: int
    coins_spent: int
    balance: int


class LeaderboardUser(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str


class LeaderboardItem(BaseModel):
    rank: int
    user: LeaderboardUser
    coins: int
    gifts: int


class LeaderboardOut(BaseModel):
    stream_id: uuid.UUID
    broadcast_id: uuid.UUID | None
    items: list[LeaderboardItem]


# --- OG tiers, daily bonus, festivals, thrones ---------------------------------------------------

Region = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Privilege = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class OgTierOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    level: int
    name: str
    monthly_price: int
    daily_bonus: int
    badge: str
    chat_privileges: list[str]
    is_active: bool


class OgTierList(BaseModel):
    items: list[OgTierOut]


class OgTierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Annotated[int, Field(ge=1, le=5)]
    name: Name
    monthly_price: Coins
    daily_bonus: Annotated[int, Field(ge=0, le=10**9)] = 0
    badge: AssetUrl = ""
    chat_privileges: Annotated[list[Privilege], Field(max_length=10)] = []
    is_active: bool = True


class OgTierPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Annotated[int, Field(ge=1, le=5)] | None = None
    name: Name | None = None
    monthly_price: Coins | None = None
    daily_bonus: Annotated[int, Field(ge=0, le=10**9)] | None = None
    badge: AssetUrl | None = None
    chat_privileges: Annotated[list[Privilege], Field(max_length=10)] | None = None
    is_active: bool | None = None


class SubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Annotated[int, Field(ge=1, le=5)]


class AutoRenewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    auto_renew: bool


class OgSubscriptionOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    tier: OgTierOut
    status: str
    active: bool
    started_at: datetime
    current_period_start: datetime
    expires_at: datetime
    auto_renew: bool
    transaction_id: uuid.UUID | None = None
    coins_charged: int | None = None
    balance: int | None = None


class DailyBonusOut(BaseModel):
    local_date: str
    timezone: str
    claimed: bool
    base_coins: int
    og_bonus_coins: int
    og_bonus_credited: bool
    bonus_multiplier: float
    next_claim_at: datetime
    coins_credited: int = 0
    balance: int | None = None


Multiplier = Annotated[float, Field(ge=1.0, le=10.0, multiple_of=0.01)]


class FestivalOut(BaseModel):
    id: uuid.UUID
    name: str
    regions: list[str]
    starts_at: datetime
    ends_at: datetime
    bonus_multiplier: float
    enabled: bool
    is_active: bool


class FestivalList(BaseModel):
    items: list[FestivalOut]


class FestivalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PackageName
    regions: Annotated[list[Region], Field(max_length=50)] = []
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    bonus_multiplier: Multiplier = 1.0
    enabled: bool = True


class FestivalPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PackageName | None = None
    regions: Annotated[list[Region], Field(max_length=50)] | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    bonus_multiplier: Multiplier | None = None
    enabled: bool | None = None


class ThroneHolder(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str


class ThroneOut(BaseModel):
    stream_id: uuid.UUID
    holder: ThroneHolder | None
    coins: int
    since: datetime | None
    window_hours: float
