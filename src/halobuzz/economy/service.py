"""Wallets, coin packages, the gift catalog and sending gifts (all balance changes go through ``ledger``)."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import ColumnElement, Table, and_, bindparam, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts import social
from halobuzz.accounts.models import Block, User
from halobuzz.config import EconomySettings, FraudSettings
from halobuzz.core import events
from halobuzz.core.clock import utcnow
from halobuzz.core.db import Database, UTCDateTime, after_commit, in_list
from halobuzz.core.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from halobuzz.core.ids import uuid7
from halobuzz.core.pagination import decode_cursor, encode_cursor
from halobuzz.economy import festivals, fraud, ledger, thrones
from halobuzz.economy.models import (
    COIN,
    CoinPackage,
    Festival,
    Gift,
    GiftSent,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from halobuzz.streams.models import Broadcast, Stream, StreamStatus

CURRENCIES = ("NPR", "INR", "BDT", "PKR", "LKR", "THB", "VND", "AED", "USD")
RARITIES = ("common", "rare", "epic", "legendary")
MAX_IDEMPOTENCY_KEY = 255


# --- wallet -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wallet:
    user_id: uuid.UUID
    balance: int
    earnings_balance: int
    currency: str = COIN


async def get_wallet(*, session: AsyncSession, user: User) -> Wallet:
    """The user's coin balance and creator earnings (accounts are created on their first posting)."""
    rows = dict(
        (
            await session.execute(
                select(LedgerAccount.kind, LedgerAccount.balance).where(
                    LedgerAccount.key.in_([ledger.user_coins(user.id).key, ledger.creator_earnings(user.id).key])
                )
            )
        ).all()
    )
    return Wallet(user.id, int(rows.get("user_coins", 0)), int(rows.get("creator_earnings", 0)))


@dataclass(frozen=True, slots=True)
class WalletEntry:
    id: uuid.UUID
    transaction_id: uuid.UUID
    kind: str
    account: str
    amount: int
    unit: str
    balance_after: int
    created_at: datetime
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WalletPage:
    items: list[WalletEntry]
    next_cursor: str | None


async def list_wallet_entries(*, session: AsyncSession, user: User, limit: int, cursor: str | None) -> WalletPage:
    """The user's ledger entries (coins and earnings), newest first."""
    query = (
        select(LedgerEntry, LedgerTransaction.kind, LedgerTransaction.meta, LedgerAccount.kind)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(LedgerAccount.owner_id == user.id)
        .order_by(LedgerEntry.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        (last_id,) = decode_cursor(cursor, uuid.UUID)
        query = query.where(LedgerEntry.id < last_id)
    rows = (await session.execute(query)).all()
    items = [
        WalletEntry(e.id, e.transaction_id, kind, account, e.amount, e.unit, e.balance_after, e.created_at, meta or {})
        for e, kind, meta, account in rows[:limit]
    ]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit and items else None
    return WalletPage(items, next_cursor)


# --- coin packages ----------------------------------------------------------------------------


def _check_prices(prices: dict[str, int]) -> dict[str, int]:
    if not prices:
        raise InvalidInput("a package needs at least one price", code="invalid_prices")
    for currency, amount in prices.items():
        if currency not in CURRENCIES:
            raise InvalidInput(
                f"unsupported currency {currency}; use one of {', '.join(CURRENCIES)}", code="invalid_currency"
            )
        if amount <= 0:
            raise InvalidInput("prices are positive amounts in minor units", code="invalid_prices")
    return dict(prices)


async def list_coin_packages(*, session: AsyncSession, include_inactive: bool = False) -> Sequence[CoinPackage]:
    """Coin packages for sale (all of them for admins), in display order."""
    query = select(CoinPackage).order_by(CoinPackage.position, CoinPackage.coins, CoinPackage.id)
    if not include_inactive:
        query = query.where(CoinPackage.is_active.is_(True))
    return (await session.scalars(query)).all()


async def create_coin_package(
    *,
    session: AsyncSession,
    actor: User,
    name: str,
    coins: int,
    bonus_coins: int,
    prices: dict[str, int],
    position: int = 0,
    is_active: bool = True,
) -> CoinPackage:
    """Add a coin package (admins)."""
    if await session.scalar(select(CoinPackage.id).where(CoinPackage.name == name)):
        raise Conflict("a coin package with this name exists", code="name_taken")
    package = CoinPackage(
        name=name,
        coins=coins,
        bonus_coins=bonus_coins,
        prices=_check_prices(prices),
        position=position,
        is_active=is_active,
    )
    session.add(package)
    await session.flush()
    return package


async def update_coin_package(
    *, session: AsyncSession, actor: User, package_id: uuid.UUID, changes: dict[str, Any]
) -> CoinPackage:
    """Change a coin package (admins); intents already created keep their amounts."""
    package = await session.get(CoinPackage, package_id, with_for_update=True)
    if package is None:
        raise NotFound("no such coin package", code="package_not_found")
    if (
        "name" in changes
        and changes["name"] != package.name
        and await session.scalar(select(CoinPackage.id).where(CoinPackage.name == changes["name"]))
    ):
        raise Conflict("a coin package with this name exists", code="name_taken")
    if "prices" in changes:
        changes["prices"] = _check_prices(changes["prices"])
    for key, value in changes.items():
        setattr(package, key, value)
    await session.flush()
    return package


async def get_coin_package(*, session: AsyncSession, package_id: uuid.UUID) -> CoinPackage:
    """An active coin package, or ``NotFound``."""
    package = await session.get(CoinPackage, package_id)
    if package is None or not package.is_active:
        raise NotFound("no such coin package on sale", code="package_not_found")
    return package


# --- gift catalog -----------------------------------------------------------------------------


def _offered(now: datetime | ColumnElement[datetime]) -> Any:
    return and_(
        Gift.is_active.is_(True),
        or_(Gift.available_from.is_(None), Gift.available_from <= now),
        or_(Gift.available_until.is_(None), Gift.available_until > now),
        # A festival gift only while its festival runs.
        or_(Gift.festival_id.is_(None), Gift.festival_id.in_(select(Festival.id).where(festivals.running(now)))),
    )


async def list_gifts(*, session: AsyncSession, include_inactive: bool = False) -> Sequence[Gift]:
    """Gifts on offer now (every gift for admins), in display order."""
    query = select(Gift).order_by(Gift.position, Gift.coin_price, Gift.id)
    if not include_inactive:
        query = query.where(_offered(utcnow()))
    return (await session.scalars(query)).all()


def _check_window(available_from: datetime | None, available_until: datetime | None) -> None:
    if available_from and available_until and available_until <= available_from:
        raise InvalidInput("available_until must be after available_from", code="invalid_window")


async def _check_festival(session: AsyncSession, festival_id: uuid.UUID | None) -> None:
    if festival_id is not None and await session.get(Festival, festival_id) is None:
        raise InvalidInput("no such festival", code="festival_not_found")


async def create_gift(*, session: AsyncSession, actor: User, fields: dict[str, Any]) -> Gift:
    """Add a gift to the catalog (admins); a festival gift is offered only while its festival runs."""
    _check_window(fields.get("available_from"), fields.get("available_until"))
    await _check_festival(session, fields.get("festival_id"))
    if await session.scalar(select(Gift.id).where(Gift.name == fields["name"])):
        raise Conflict("a gift with this name exists", code="name_taken")
    gift = Gift(**fields)
    session.add(gift)
    await session.flush()
    return gift


async def update_gift(*, session: AsyncSession, actor: User, gift_id: uuid.UUID, changes: dict[str, Any]) -> Gift:
    """Change a catalog gift (admins); gifts already sent keep what they cost."""
    gift = await session.get(Gift, gift_id, with_for_update=True)
    if gift is None:
        raise NotFound("no such gift", code="gift_not_found")
    if (
        "name" in changes
        and changes["name"] != gift.name
        and await session.scalar(select(Gift.id).where(Gift.name == changes["name"]))
    ):
        raise Conflict("a gift with this name exists", code="name_taken")
    _check_window(
        changes.get("available_from", gift.available_from), changes.get("available_until", gift.available_until)
    )
    await _check_festival(session, changes.get("festival_id"))
    for key, value in changes.items():
        setattr(gift, key, value)
    await session.flush()
    return gift


DEFAULT_PACKAGES: tuple[tuple[str, int, int, int], ...] = (
    # name, coins, bonus coins, price in NPR paisa (NPR 10 = 500 coins)
    ("Starter", 500, 0, 1000),
    ("Popular", 2500, 100, 5000),
    ("Big", 5000, 300, 10000),
    ("Mega", 25000, 2500, 50000),
)
# Rough minor units of each currency per paisa (VND has no minor unit: dong), for the default packages only.
_NPR_RATE = {
    "NPR": 1.0,
    "INR": 0.625,
    "BDT": 0.9,
    "PKR": 2.1,
    "LKR": 2.2,
    "THB": 0.26,
    "VND": 1.9,
    "AED": 0.0275,
    "USD": 0.0075,
}
DEFAULT_GIFTS: tuple[tuple[str, int, str], ...] = (
    ("Rose", 1, "common"),
    ("Heart", 5, "common"),
    ("Star", 20, "rare"),
    ("Crown", 100, "epic"),
    ("Rocket", 500, "epic"),
    ("Dragon", 2000, "legendary"),
)


async def ensure_default_catalog(session: AsyncSession) -> None:
    """Create the default coin packages and gifts when missing (idempotent; for seeding)."""
    have = set((await session.scalars(select(CoinPackage.name))).all())
    for position, (name, coins, bonus, npr_paisa) in enumerate(DEFAULT_PACKAGES):
        if name not in have:
            prices = {c: max(1, round(npr_paisa * rate)) for c, rate in _NPR_RATE.items()}
            session.add(CoinPackage(name=name, coins=coins, bonus_coins=bonus, prices=prices, position=position))
    have_gifts = set((await session.scalars(select(Gift.name))).all())
    for position, (name, price, rarity) in enumerate(DEFAULT_GIFTS):
        if name not in have_gifts:
            session.add(
                Gift(
                    name=name,
                    coin_price=price,
                    rarity=rarity,
                    position=position,
                    animation_url=f"/static/gifts/{name.lower()}.json",
                )
            )
    await session.flush()


# --- sending gifts ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GiftReceipt:
    """What a gift cost; identical on every retry with the same idempotency key."""

    id: uuid.UUID
    gift: dict[str, Any]
    quantity: int
    coins_spent: int
    balance: int
    stream_id: uuid.UUID
    sender_id: uuid.UUID
    receiver_id: uuid.UUID
    created: bool
    # A new holder of the stream's throne because of this gift (new gifts only).
    throne: thrones.ThroneChange | None = None


OnCommitted = Callable[[GiftReceipt], Awaitable[None] | None]
Guard = Callable[[], Awaitable[None]]


def _request_hash(stream_id: uuid.UUID, gift_id: uuid.UUID, quantity: int) -> str:
    body = orjson.dumps({"stream_id": str(stream_id), "gift_id": str(gift_id), "quantity": quantity})
    return hashlib.sha256(body).hexdigest()


def _receipt(tx: LedgerTransaction, *, balance: int, created: bool) -> GiftReceipt:
    return _receipt_of(tx.id, tx.meta, balance=balance, created=created)


def _receipt_of(tx_id: uuid.UUID, m: dict[str, Any], *, balance: int, created: bool) -> GiftReceipt:
    return GiftReceipt(
        id=tx_id,
        gift=m["gift"],
        quantity=int(m["quantity"]),
        coins_spent=int(m["coins_spent"]),
        balance=balance,
        stream_id=uuid.UUID(m["stream_id"]),
        sender_id=uuid.UUID(m["sender_id"]),
        receiver_id=uuid.UUID(m["receiver_id"]),
        created=created,
    )


async def _replay(session: AsyncSession, tx: LedgerTransaction, request_hash: str) -> GiftReceipt:
    if tx.kind != "gift" or tx.request_hash != request_hash:
        raise _key_reused()
    # The sender's balance right after the gift, so a retry answers with the same body.
    balance = await session.scalar(
        select(LedgerEntry.balance_after)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id == tx.id, LedgerAccount.kind == "user_coins")
    )
    return _receipt(tx, balance=int(balance or 0), created=False)


def _split(total: int, share: float) -> tuple[int, int]:
    creator = total * round(share * 10_000) // 10_000
    return creator, total - creator


def _gift_legs(
    sender_id: uuid.UUID, receiver_id: uuid.UUID, total: int, creator_part: int, platform_part: int
) -> list[ledger.Leg]:
    legs = [ledger.Leg(ledger.user_coins(sender_id), -total)]
    if creator_part:
        legs.append(ledger.Leg(ledger.creator_earnings(receiver_id), creator_part))
    if platform_part:
        legs.append(ledger.Leg(ledger.platform("platform_revenue"), platform_part))
    return legs


def _gift_meta(
    gift: Gift,
    *,
    quantity: int,
    total: int,
    stream_id: uuid.UUID,
    broadcast_id: uuid.UUID | None,
    sender_id: uuid.UUID,
    receiver_id: uuid.UUID,
    creator_part: int,
    platform_part: int,
) -> dict[str, Any]:
    return {
        "gift": {
            "id": str(gift.id),
            "name": gift.name,
            "coin_price": gift.coin_price,
            "animation_url": gift.animation_url,
            "rarity": gift.rarity,
        },
        "quantity": quantity,
        "coins_spent": total,
        "stream_id": str(stream_id),
        "broadcast_id": str(broadcast_id) if broadcast_id else None,
        "sender_id": str(sender_id),
        "receiver_id": str(receiver_id),
        "creator_coins": creator_part,
        "platform_coins": platform_part,
    }


async def send_gift(
    *,
    session: AsyncSession,
    actor: User,
    stream_id: uuid.UUID,
    gift_id: uuid.UUID,
    quantity: int,
    idempotency_key: str,
    settings: EconomySettings | None = None,
    on_committed: OnCommitted | None = None,
    guard: Guard | None = None,
) -> GiftReceipt:
    """Send ``quantity`` of a gift to a live stream's owner: one ledger transaction debits the
    sender and credits the creator's earnings (``revenue_share``, floored) and platform revenue.

    Idempotent per (actor, key): the same request returns the first receipt; another request under
    the same key is refused. Balances are checked under the accounts' row locks (see ``ledger``).
    ``on_committed`` runs after the commit of a new gift (for socket broadcasts), never on retries.
    """
    settings = settings or EconomySettings()
    if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidInput(
            f"an Idempotency-Key of 1 to {MAX_IDEMPOTENCY_KEY} characters is required", code="invalid_idempotency_key"
        )
    if not 1 <= quantity <= settings.max_gift_quantity:
        raise InvalidInput(f"quantity must be between 1 and {settings.max_gift_quantity}", code="invalid_quantity")
    request_hash = _request_hash(stream_id, gift_id, quantity)
    existing = await ledger.find_transaction(session=session, actor_id=actor.id, idempotency_key=idempotency_key)
    if existing is not None:
        return await _replay(session, existing, request_hash)

    stream = await session.get(Stream, stream_id)
    if stream is None or stream.deleted_at is not None:
        raise NotFound("no such stream", code="stream_not_found")
    if stream.status != StreamStatus.LIVE:
        raise Conflict("gifts can be sent only while the stream is live", code="stream_not_live")
    if stream.owner_id == actor.id:
        raise Conflict("you cannot send gifts to your own stream", code="self_gift")
    if await social.blocked_either_way(session=session, a=actor.id, b=stream.owner_id):
        raise Forbidden("you cannot send gifts to this creator", code="blocked")
    gift = await session.scalar(select(Gift).where(Gift.id == gift_id, _offered(utcnow())))
    if gift is None:
        raise NotFound("no such gift on offer", code="gift_not_found")

    total = gift.coin_price * quantity
    creator_part, platform_part = _split(total, settings.revenue_share)
    legs = _gift_legs(actor.id, stream.owner_id, total, creator_part, platform_part)
    meta = _gift_meta(
        gift,
        quantity=quantity,
        total=total,
        stream_id=stream.id,
        broadcast_id=stream.current_broadcast_id,
        sender_id=actor.id,
        receiver_id=stream.owner_id,
        creator_part=creator_part,
        platform_part=platform_part,
    )
    posted = await ledger.post_transaction(
        session=session,
        kind="gift",
        legs=legs,
        actor_id=actor.id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        meta=meta,
    )
    if not posted.created:
        return await _replay(session, posted.transaction, request_hash)
    await fraud.count_gifts(session=session, sent={actor.id: (1, total)}, at=utcnow())
    if guard is not None:  # velocity caps, checked under the sender's account lock (economy.fraud)
        await guard()
    sent_at = utcnow()
    session.add(
        GiftSent(
            created_at=sent_at,
            transaction_id=posted.transaction.id,
            stream_id=stream.id,
            broadcast_id=stream.current_broadcast_id,
            sender_id=actor.id,
            receiver_id=stream.owner_id,
            gift_id=gift.id,
            quantity=quantity,
            coins=total,
        )
    )
    await session.flush()
    change = await thrones.update_throne(
        session=session,
        stream_id=stream.id,
        window=timedelta(hours=settings.throne_window_hours),
        gifts=[thrones.NewGift(actor.id, total, sent_at)],
    )
    events.emit(session, "gift.sent", {"transaction_id": posted.transaction.id, **meta}, actor_id=actor.id)
    receipt = dataclasses.replace(
        _receipt(posted.transaction, balance=posted.balances[ledger.user_coins(actor.id).key], created=True),
        throne=change,
    )
    if on_committed is not None:
        callback = on_committed
        after_commit(session, lambda: callback(receipt))
    return receipt


@dataclass(frozen=True, slots=True)
class GiftOrder:
    """One gift of a batch posted in bulk (``send_gifts``)."""

    actor_id: uuid.UUID
    stream_id: uuid.UUID
    gift_id: uuid.UUID
    quantity: int
    idempotency_key: str
    on_committed: OnCommitted | None = None


@dataclass(frozen=True, slots=True)
class Velocity:
    """The gift velocity caps to apply to a batch (``economy.fraud``), and where refusals are flagged."""

    settings: FraudSettings
    db: Database


@dataclass(slots=True)
class GiftContext:
    """What a batch's checks read that needs no lock (``gift_context``): stored receipts of its
    idempotency keys, the streams, blocks between senders and creators, the gifts on offer."""

    stored: dict[tuple[uuid.UUID, str], tuple[uuid.UUID, str, str | None, dict[str, Any]]]
    replay_balances: dict[uuid.UUID, int]
    streams: dict[uuid.UUID, Any]
    blocks: set[tuple[uuid.UUID, uuid.UUID]]
    gifts: dict[uuid.UUID, Gift]

    @property
    def owners(self) -> dict[uuid.UUID, uuid.UUID]:
        """Stream id → owner id."""
        return {stream_id: row.owner_id for stream_id, row in self.streams.items()}


_GIFTS_ON_OFFER = select(Gift).where(in_list(Gift.id, "ids"), _offered(bindparam("now", type_=UTCDateTime())))
# The statements of gift_context, built once (lists bound when they run: ``core.db.in_list``).
_STORED = select(
    LedgerTransaction.id,
    LedgerTransaction.actor_id,
    LedgerTransaction.idempotency_key,
    LedgerTransaction.kind,
    LedgerTransaction.request_hash,
    LedgerTransaction.meta,
).where(in_list(LedgerTransaction.actor_id, "actors"), in_list(LedgerTransaction.idempotency_key, "keys"))
_REPLAY_BALANCES = (
    select(LedgerEntry.transaction_id, LedgerEntry.balance_after)
    .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
    .where(in_list(LedgerEntry.transaction_id, "ids"), LedgerAccount.kind == "user_coins")
)
_STREAMS = select(Stream.id, Stream.owner_id, Stream.status, Stream.deleted_at, Stream.current_broadcast_id).where(
    in_list(Stream.id, "ids")
)
_BLOCKS = select(Block.blocker_id, Block.blocked_id).where(
    or_(
        and_(in_list(Block.blocker_id, "actors"), in_list(Block.blocked_id, "owners")),
        and_(in_list(Block.blocker_id, "owners"), in_list(Block.blocked_id, "actors")),
    )
)


async def gift_context(
    *, session: AsyncSession, orders: Sequence[GiftOrder], now: datetime | None = None
) -> GiftContext:
    """The unlocked reads of ``send_gifts``, one query each. A batch may make them before it takes
    its locks (``economy.batch``): a key another transaction commits meanwhile makes the bulk
    insert fail on its unique index, and the batch is posted again gift by gift."""
    now = now or utcnow()
    actor_ids = {o.actor_id for o in orders}
    stored: dict[tuple[uuid.UUID, str], tuple[uuid.UUID, str, str | None, dict[str, Any]]] = {}
    actors = sorted(actor_ids)
    for tx_id, actor_id, key, kind, rhash, meta in (
        await session.execute(_STORED, {"actors": actors, "keys": sorted({o.idempotency_key for o in orders})})
    ).all():
        stored[(actor_id, key)] = (tx_id, kind, rhash, meta)
    replay_balances: dict[uuid.UUID, int] = {}
    if stored:
        replay_balances = {
            tx_id: int(balance)
            for tx_id, balance in (
                await session.execute(_REPLAY_BALANCES, {"ids": [v[0] for v in stored.values()]})
            ).all()
        }
    streams = {
        row.id: row for row in (await session.execute(_STREAMS, {"ids": sorted({o.stream_id for o in orders})})).all()
    }
    owner_ids = sorted({row.owner_id for row in streams.values()})
    blocks: set[tuple[uuid.UUID, uuid.UUID]] = set()
    if owner_ids:
        blocks = {(a, b) for a, b in (await session.execute(_BLOCKS, {"actors": actors, "owners": owner_ids})).all()}
    gift_ids = sorted({o.gift_id for o in orders})
    gifts = {g.id: g for g in (await session.scalars(_GIFTS_ON_OFFER, {"ids": gift_ids, "now": now})).all()}
    return GiftContext(stored, replay_balances, streams, blocks, gifts)


async def send_gifts(
    *,
    session: AsyncSession,
    orders: Sequence[GiftOrder],
    accounts: dict[str, ledger.LockedAccount],
    settings: EconomySettings,
    velocity: Velocity | None = None,
    context: GiftContext | None = None,
) -> tuple[list[GiftReceipt | DomainError], list[Callable[[], None]]]:
    """``send_gift`` for many gifts at once, in a few statements: the same answers, in order, as
    posting each in its own savepoint one after the other.

    ``accounts`` are every account the orders may touch, locked by the caller (``ledger.lock_accounts``),
    as are the streams' throne rows. Each order is checked in Python against what the orders
    before it left — replays (stored, or earlier in this batch) answer their receipt, refusals get
    their own error — then the batch is written in bulk (``ledger.BulkPosting``, multi-row inserts
    of ``gift_sent`` and outbox rows), each stream's throne recomputed once. ``context`` is
    ``gift_context`` of the orders when the caller read it already. Returns the outcomes and the
    hooks to register once the writes succeeded (after-commit broadcasts, fraud flags).
    """
    now = utcnow()
    outcomes: list[GiftReceipt | DomainError | None] = [None] * len(orders)
    todo: list[tuple[int, GiftOrder, str]] = []
    for i, o in enumerate(orders):
        if not o.idempotency_key or len(o.idempotency_key) > MAX_IDEMPOTENCY_KEY:
            outcomes[i] = InvalidInput(
                f"an Idempotency-Key of 1 to {MAX_IDEMPOTENCY_KEY} characters is required",
                code="invalid_idempotency_key",
            )
        elif not 1 <= o.quantity <= settings.max_gift_quantity:
            outcomes[i] = InvalidInput(
                f"quantity must be between 1 and {settings.max_gift_quantity}", code="invalid_quantity"
            )
        else:
            todo.append((i, o, _request_hash(o.stream_id, o.gift_id, o.quantity)))
    if not todo:
        return [o for o in outcomes if o is not None], []

    if context is None:
        context = await gift_context(session=session, orders=[o for _, o, _ in todo], now=now)
    actor_ids = {o.actor_id for _, o, _ in todo}
    stored, replay_balances, streams = context.stored, context.replay_balances, context.streams
    blocks, gifts = context.blocks, context.gifts
    spent: dict[uuid.UUID, tuple[int, int]] = {}
    if velocity is not None:
        spent = await fraud.gift_spending_last_minute(session=session, sender_ids=sorted(actor_ids), at=now)
    sent_now: dict[uuid.UUID, tuple[int, int]] = {}

    plan = ledger.BulkPosting(accounts)
    posted_here: dict[tuple[uuid.UUID, str], tuple[uuid.UUID, str, dict[str, Any], int]] = {}
    gift_rows: list[dict[str, Any]] = []
    event_items: list[tuple[str, dict[str, Any], uuid.UUID | None]] = []
    new: list[tuple[int, GiftOrder, uuid.UUID, dict[str, Any], int]] = []
    hooks: list[Callable[[], None]] = []
    for i, o, rhash in todo:
        pair = (o.actor_id, o.idempotency_key)
        try:
            if pair in posted_here:
                tx_id, first_hash, meta, balance = posted_here[pair]
                if first_hash != rhash:
                    raise _key_reused()
                outcomes[i] = _receipt_of(tx_id, meta, balance=balance, created=False)
                continue
            if pair in stored:
                tx_id, kind, stored_hash, meta = stored[pair]
                if kind != "gift" or stored_hash != rhash:
                    raise _key_reused()
                outcomes[i] = _receipt_of(tx_id, meta, balance=replay_balances.get(tx_id, 0), created=False)
                continue
            stream = streams.get(o.stream_id)
            if stream is None or stream.deleted_at is not None:
                raise NotFound("no such stream", code="stream_not_found")
            if stream.status != StreamStatus.LIVE:
                raise Conflict("gifts can be sent only while the stream is live", code="stream_not_live")
            if stream.owner_id == o.actor_id:
                raise Conflict("you cannot send gifts to your own stream", code="self_gift")
            if (o.actor_id, stream.owner_id) in blocks or (stream.owner_id, o.actor_id) in blocks:
                raise Forbidden("you cannot send gifts to this creator", code="blocked")
            gift = gifts.get(o.gift_id)
            if gift is None:
                raise NotFound("no such gift on offer", code="gift_not_found")
            total = gift.coin_price * o.quantity
            creator_part, platform_part = _split(total, settings.revenue_share)
            legs = _gift_legs(o.actor_id, stream.owner_id, total, creator_part, platform_part)
            plan.check(legs)
            sender_key = ledger.user_coins(o.actor_id).key
            if velocity is not None:  # as fraud.check_gift_velocity: this gift counted
                count, coins = spent.get(o.actor_id, (0, 0))
                refusal = fraud.gift_velocity_refusal(velocity.settings, count=count + 1, coins=coins + total)
                if refusal is not None:
                    hooks.append(_flagger(session, velocity.db, o.actor_id, refusal.details))
                    raise refusal
                spent[o.actor_id] = (count + 1, coins + total)
            here = sent_now.get(o.actor_id, (0, 0))
            sent_now[o.actor_id] = (here[0] + 1, here[1] + total)
            meta = _gift_meta(
                gift,
                quantity=o.quantity,
                total=total,
                stream_id=stream.id,
                broadcast_id=stream.current_broadcast_id,
                sender_id=o.actor_id,
                receiver_id=stream.owner_id,
                creator_part=creator_part,
                platform_part=platform_part,
            )
            tx_id, after = plan.add(
                kind="gift",
                legs=legs,
                actor_id=o.actor_id,
                idempotency_key=o.idempotency_key,
                request_hash=rhash,
                meta=meta,
            )
        except DomainError as exc:
            outcomes[i] = exc
            continue
        posted_here[pair] = (tx_id, rhash, meta, after[sender_key])
        gift_rows.append(
            {
                "id": uuid7(),
                "created_at": utcnow(),
                "transaction_id": tx_id,
                "stream_id": stream.id,
                "broadcast_id": stream.current_broadcast_id,
                "sender_id": o.actor_id,
                "receiver_id": stream.owner_id,
                "gift_id": gift.id,
                "quantity": o.quantity,
                "coins": total,
            }
        )
        event_items.append(("gift.sent", {"transaction_id": tx_id, **meta}, o.actor_id))
        new.append((i, o, tx_id, meta, after[sender_key]))

    if new:
        await plan.write(session)
        await fraud.count_gifts(session=session, sent=sent_now, at=now)
        await session.execute(insert(cast(Table, GiftSent.__table__)), gift_rows)
        window = timedelta(hours=settings.throne_window_hours)
        changes: dict[uuid.UUID, thrones.ThroneChange | None] = {}
        for stream_id in sorted({o.stream_id for _, o, *_ in new}):
            stream_gifts = [
                thrones.NewGift(row["sender_id"], row["coins"], row["created_at"])
                for row in gift_rows
                if row["stream_id"] == stream_id
            ]
            changes[stream_id] = await thrones.update_throne(
                session=session, stream_id=stream_id, window=window, locked=True, gifts=stream_gifts
            )
        await events.emit_many(session, event_items)
        last_of_stream = {o.stream_id: i for i, o, *_ in new}
        for i, o, tx_id, meta, balance in new:
            receipt = _receipt_of(tx_id, meta, balance=balance, created=True)
            if last_of_stream[o.stream_id] == i and changes[o.stream_id] is not None:
                # The throne as the batch left it: announced with the stream's last gift of the batch.
                receipt = dataclasses.replace(receipt, throne=changes[o.stream_id])
            outcomes[i] = receipt
            if o.on_committed is not None:
                hooks.append(_announce(session, o.on_committed, receipt))
    return [o for o in outcomes if o is not None], hooks


def _key_reused() -> Conflict:
    return Conflict(
        "this Idempotency-Key was used for a different request; use a new key for a new gift",
        code="idempotency_key_reused",
    )


def _flagger(session: AsyncSession, db: Database, user_id: uuid.UUID, details: dict[str, Any]) -> Callable[[], None]:
    return lambda: fraud.flag_after(session, db, kind="gift_velocity", user_id=user_id, details=details)


def _announce(session: AsyncSession, callback: OnCommitted, receipt: GiftReceipt) -> Callable[[], None]:
    return lambda: after_commit(session, lambda: callback(receipt))


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    user_id: uuid.UUID
    username: str
    display_name: str
    coins: int
    gifts: int


async def gift_leaderboard(
    *, session: AsyncSession, stream_id: uuid.UUID, broadcast_id: uuid.UUID | None, limit: int
) -> tuple[uuid.UUID | None, list[LeaderboardRow]]:
    """Top gift senders of a broadcast (the current one, else the latest) by coins."""
    stream = await session.get(Stream, stream_id)
    if stream is None or stream.deleted_at is not None:
        raise NotFound("no such stream", code="stream_not_found")
    if broadcast_id is None:
        broadcast_id = stream.current_broadcast_id or await session.scalar(
            select(Broadcast.id).where(Broadcast.stream_id == stream_id).order_by(Broadcast.started_at.desc()).limit(1)
        )
    elif not await session.scalar(
        select(Broadcast.id).where(Broadcast.id == broadcast_id, Broadcast.stream_id == stream_id)
    ):
        raise NotFound("no such broadcast of this stream", code="broadcast_not_found")
    if broadcast_id is None:
        return None, []
    coins = func.sum(GiftSent.coins).label("coins")
    rows = (
        await session.execute(
            select(User.id, User.username, User.display_name, coins, func.sum(GiftSent.quantity))
            .join(User, User.id == GiftSent.sender_id)
            .where(GiftSent.broadcast_id == broadcast_id)
            .group_by(User.id, User.username, User.display_name)
            .order_by(coins.desc(), User.id)
            .limit(limit)
        )
    ).all()
    return broadcast_id, [LeaderboardRow(u, n, d, int(c), int(q)) for u, n, d, c, q in rows]
