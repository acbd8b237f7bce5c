"""Coin purchases: intents, provider callbacks and webhooks, crediting coins exactly once, and
reconciliation. Crediting inserts the provider event (unique per provider) and posts the ledger
transaction in the same database transaction, under the intent's row lock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.config import PaymentsSettings, Settings
from halobuzz.core import events
from halobuzz.core.db import Database
from halobuzz.core.errors import Conflict, InvalidInput, NotFound
from halobuzz.core.ids import uuid7
from halobuzz.core.pagination import decode_cursor, encode_cursor
from halobuzz.economy import fraud, ledger
from halobuzz.economy import service as economy_service
from halobuzz.economy.models import COIN, LedgerAccount
from halobuzz.payments import refunds
from halobuzz.payments.models import IntentStatus, PaymentEvent, PaymentIntent
from halobuzz.payments.providers.base import IntentInfo, Provider
from halobuzz.payments.providers.esewa import EsewaProvider, to_paisa
from halobuzz.payments.providers.khalti import KhaltiProvider
from halobuzz.payments.providers.sandbox import SandboxProvider
from halobuzz.payments.providers.stripe import StripeProvider, verify_signature


def sandbox_enabled(settings: Settings) -> bool:
    enabled = settings.payments.sandbox_enabled
    return settings.env != "production" if enabled is None else enabled


def enabled_providers(settings: Settings) -> dict[str, Provider]:
    """The providers this server is configured for."""
    p = settings.payments
    providers: dict[str, Provider] = {}
    if sandbox_enabled(settings):
        providers["sandbox"] = SandboxProvider()
    if p.stripe_secret_key is not None:
        providers["stripe"] = StripeProvider(p)
    if p.esewa_secret_key is not None:
        providers["esewa"] = EsewaProvider(p)
    if p.khalti_secret_key is not None:
        providers["khalti"] = KhaltiProvider(p)
    return providers


def _provider(settings: Settings, name: str) -> Any:
    provider = enabled_providers(settings).get(name)
    if provider is None:
        raise NotFound(f"the payment provider {name!r} is not enabled here", code="provider_not_enabled")
    return provider


@dataclass(frozen=True, slots=True)
class IntentView:
    intent: PaymentIntent
    next_action: dict[str, Any] | None


async def create_intent(
    *, db: Database, actor: User, settings: Settings, package_id: uuid.UUID, provider: str, currency: str
) -> IntentView:
    """Start buying a coin package: record a pending intent (velocity caps checked), open the
    provider's checkout with no write transaction open, then store the provider's reference."""
    chosen = _provider(settings, provider)
    async with db.session() as session:
        package = await economy_service.get_coin_package(session=session, package_id=package_id)
        amount = package.prices.get(currency)
        if amount is None:
            raise InvalidInput(
                f"this package is not sold in {currency}; choose one of {', '.join(sorted(package.prices))}",
                code="currency_not_offered",
            )
        if chosen.currencies is not None and currency not in chosen.currencies:
            raise InvalidInput(f"{provider} takes {', '.join(chosen.currencies)} only", code="currency_not_supported")
        await fraud.check_purchase_velocity(
            session=session, db=db, settings=settings.fraud, user_id=actor.id, amount=int(amount)
        )
        intent = PaymentIntent(
            id=uuid7(),
            user_id=actor.id,
            package_id=package.id,
            provider=provider,
            currency=currency,
            amount=int(amount),
            coins=package.coins + package.bonus_coins,
        )
        session.add(intent)
        await session.flush()
        info = IntentInfo(intent.id, intent.amount, currency, intent.coins, package.name)
    try:
        checkout = await chosen.start(info)
    except BaseException:
        async with db.session() as session:
            await close_intent(session=session, intent_id=info.id, provider=provider, status=IntentStatus.FAILED)
        raise
    async with db.session() as session:
        started = await session.get(PaymentIntent, info.id, with_for_update=True, populate_existing=True)
        assert started is not None
        started.provider_reference = checkout.reference
        await session.flush()
    return IntentView(started, checkout.next_action)


async def get_intent(*, session: AsyncSession, actor: User, intent_id: uuid.UUID) -> PaymentIntent:
    """One of the user's payment intents."""
    intent = await session.get(PaymentIntent, intent_id)
    if intent is None or intent.user_id != actor.id:
        raise NotFound("no such payment", code="intent_not_found")
    return intent


async def credit_intent(
    *,
    session: AsyncSession,
    intent_id: uuid.UUID,
    provider: str,
    event_id: str,
    event_type: str,
    amount: int,
    currency: str,
    provider_payment_id: str | None = None,
) -> PaymentIntent:
    """Apply a provider's confirmation of payment once: lock the intent, record the event, post
    the fiat and coin legs, mark it succeeded. Repeats (same event or a second confirmation) change nothing."""
    intent = await session.get(PaymentIntent, intent_id, with_for_update=True, populate_existing=True)
    if intent is None or intent.provider != provider:
        raise NotFound("no such payment for this provider", code="intent_not_found")
    if intent.status == IntentStatus.SUCCEEDED:
        return intent
    if intent.status != IntentStatus.PENDING:
        raise Conflict(f"the payment is {intent.status}", code="intent_not_pending")
    if amount != intent.amount or currency.upper() != intent.currency:
        raise InvalidInput("the paid amount does not match the payment", code="amount_mismatch")
    ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    inserted = await session.execute(
        ins(PaymentEvent)
        .values(id=uuid7(), provider=provider, provider_event_id=event_id, intent_id=intent.id, type=event_type)
        .on_conflict_do_nothing(index_elements=["provider", "provider_event_id"])
        .returning(PaymentEvent.id)
    )
    if inserted.scalar_one_or_none() is None:
        return intent
    posted = await ledger.post_transaction(
        session=session,
        kind="coin_purchase",
        legs=[
            ledger.Leg(ledger.provider_clearing(intent.currency), -intent.amount),
            ledger.Leg(ledger.platform("platform_revenue", intent.currency), intent.amount),
            ledger.Leg(ledger.platform("coin_mint"), -intent.coins),
            ledger.Leg(ledger.user_coins(intent.user_id), intent.coins),
        ],
        actor_id=intent.user_id,
        idempotency_key=f"payment:{intent.id}",
        meta={
            "payment_intent_id": str(intent.id),
            "provider": provider,
            "provider_event_id": event_id,
            "currency": intent.currency,
            "amount": intent.amount,
            "coins": intent.coins,
        },
    )
    intent.status = IntentStatus.SUCCEEDED.value
    intent.transaction_id = posted.transaction.id
    if provider_payment_id:
        intent.provider_payment_id = provider_payment_id
    await session.flush()
    events.emit(
        session,
        "payment.completed",
        {
            "payment_intent_id": intent.id,
            "user_id": intent.user_id,
            "provider": provider,
            "currency": intent.currency,
            "amount": intent.amount,
            "coins": intent.coins,
            "transaction_id": posted.transaction.id,
        },
        actor_id=intent.user_id,
    )
    return intent


async def close_intent(
    *, session: AsyncSession, intent_id: uuid.UUID, provider: str, status: IntentStatus
) -> PaymentIntent:
    """Mark a pending intent failed or canceled (the provider says it will never be paid); a paid one stays paid."""
    intent = await session.get(PaymentIntent, intent_id, with_for_update=True, populate_existing=True)
    if intent is None or intent.provider != provider:
        raise NotFound("no such payment for this provider", code="intent_not_found")
    if intent.status == IntentStatus.PENDING:
        intent.status = status.value
        await session.flush()
    return intent


async def sandbox_intent(*, session: AsyncSession, settings: Settings, intent_id: uuid.UUID) -> PaymentIntent:
    """A sandbox intent, for its checkout page."""
    if not sandbox_enabled(settings):
        raise NotFound("the sandbox provider is not enabled here", code="provider_not_enabled")
    intent = await session.get(PaymentIntent, intent_id)
    if intent is None or intent.provider != "sandbox":
        raise NotFound("no such sandbox payment", code="intent_not_found")
    return intent


async def complete_sandbox(*, session: AsyncSession, settings: Settings, intent_id: uuid.UUID) -> PaymentIntent:
    """Pay a sandbox intent (its checkout page's Pay button); completing twice credits once."""
    intent = await sandbox_intent(session=session, settings=settings, intent_id=intent_id)
    return await credit_intent(
        session=session,
        intent_id=intent.id,
        provider="sandbox",
        event_id=f"complete:{intent.id}",
        event_type="sandbox.completed",
        amount=intent.amount,
        currency=intent.currency,
    )


@dataclass(frozen=True, slots=True)
class WebhookResult:
    received: bool
    intent_id: uuid.UUID | None = None
    status: str | None = None


async def handle_stripe_webhook(
    *, session: AsyncSession, settings: Settings, payload: bytes, signature: str | None
) -> WebhookResult:
    """Verify a Stripe webhook and credit a paid ``checkout.session.completed`` once (by event id)."""
    p: PaymentsSettings = settings.payments
    if p.stripe_webhook_secret is None:
        raise NotFound("Stripe webhooks are not configured here", code="provider_not_enabled")
    verify_signature(
        payload=payload,
        header=signature,
        secret=p.stripe_webhook_secret.get_secret_value(),
        tolerance=p.stripe_tolerance_seconds,
    )
    try:
        event = orjson.loads(payload)
        event_id = str(event["id"])
        event_type = str(event["type"])
        obj = event["data"]["object"]
        if not isinstance(obj, dict):
            raise TypeError("object")
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise InvalidInput("the webhook body is not a Stripe event", code="invalid_event") from exc
    if event_type in ("checkout.session.expired", "checkout.session.async_payment_failed"):
        intent = await _stripe_intent(session, obj)
        closed = IntentStatus.CANCELED if event_type == "checkout.session.expired" else IntentStatus.FAILED
        intent = await close_intent(session=session, intent_id=intent.id, provider="stripe", status=closed)
        return WebhookResult(received=True, intent_id=intent.id, status=intent.status)
    if event_type == "charge.refunded":
        charged = await refunds.stripe_charge_refunded(session=session, event_id=event_id, charge=obj)
        if charged is None:
            return WebhookResult(received=True)
        return WebhookResult(received=True, intent_id=charged.id, status=charged.status)
    if event_type not in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return WebhookResult(received=True)
    if obj.get("payment_status") != "paid":
        return WebhookResult(received=True)
    intent = await _stripe_intent(session, obj)
    try:
        amount = int(obj["amount_total"])
        currency = str(obj["currency"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("the checkout session has no amount", code="invalid_event") from exc
    intent = await credit_intent(
        session=session,
        intent_id=intent.id,
        provider="stripe",
        event_id=event_id,
        event_type=event_type,
        amount=amount,
        currency=currency,
        provider_payment_id=str(obj["payment_intent"]) if obj.get("payment_intent") else None,
    )
    return WebhookResult(received=True, intent_id=intent.id, status=intent.status)


async def _stripe_intent(session: AsyncSession, obj: Any) -> PaymentIntent:
    """The intent a checkout session belongs to (its id must be the one Stripe gave us)."""
    try:
        intent_id = uuid.UUID(str((obj.get("metadata") or {}).get("intent_id") or obj.get("client_reference_id")))
    except (ValueError, AttributeError) as exc:
        raise InvalidInput("the checkout session does not name a payment", code="invalid_event") from exc
    intent = await session.get(PaymentIntent, intent_id)
    if intent is None or intent.provider != "stripe" or intent.provider_reference != obj.get("id"):
        raise NotFound("no payment for this checkout session", code="intent_not_found")
    return intent


async def handle_esewa_callback(*, db: Database, settings: Settings, data: str) -> WebhookResult:
    """Verify eSewa's success callback, match it to its intent and credit once eSewa's status API says
    COMPLETE. The status call runs with no write transaction open; crediting re-checks under the lock."""
    provider: EsewaProvider = _provider(settings, "esewa")
    fields = provider.decode_callback(data)
    try:
        intent_id = uuid.UUID(str(fields["transaction_uuid"]))
    except ValueError as exc:
        raise NotFound("no such eSewa payment", code="intent_not_found") from exc
    async with db.session(write=False) as session:
        intent = await session.get(PaymentIntent, intent_id)
    if intent is None or intent.provider != "esewa":
        raise NotFound("no such eSewa payment", code="intent_not_found")
    paid = to_paisa(fields["total_amount"])
    if paid != intent.amount or fields["product_code"] != settings.payments.esewa_product_code:
        raise InvalidInput("the eSewa callback does not match the payment", code="amount_mismatch")
    if intent.status == IntentStatus.SUCCEEDED:
        return WebhookResult(received=True, intent_id=intent.id, status=intent.status)
    if str(fields["status"]) != "COMPLETE":
        return WebhookResult(received=True, intent_id=intent.id, status=intent.status)
    status = await provider.status(transaction_uuid=str(intent.id), total_amount=str(fields["total_amount"]))
    if status.get("status") != "COMPLETE" or to_paisa(status.get("total_amount")) != intent.amount:
        raise Conflict(
            "eSewa has not completed this payment",
            code="payment_not_complete",
            details={"status": status.get("status")},
        )
    ref = str(status.get("ref_id") or fields.get("transaction_code") or intent.id)
    async with db.session() as session:
        intent = await credit_intent(
            session=session,
            intent_id=intent.id,
            provider="esewa",
            event_id=f"complete:{ref}",
            event_type="esewa.complete",
            amount=intent.amount,
            currency="NPR",
        )
    return WebhookResult(received=True, intent_id=intent.id, status=intent.status)


async def handle_khalti_callback(*, db: Database, settings: Settings, pidx: str) -> WebhookResult:
    """Credit a Khalti payment only when Khalti's lookup says ``Completed`` for the intent's amount
    (the callback's own parameters are not trusted). The lookup runs with no write transaction open."""
    provider: KhaltiProvider = _provider(settings, "khalti")
    async with db.session(write=False) as session:
        intent = await session.scalar(
            select(PaymentIntent).where(PaymentIntent.provider == "khalti", PaymentIntent.provider_reference == pidx)
        )
    if intent is None:
        raise NotFound("no such Khalti payment", code="intent_not_found")
    if intent.status == IntentStatus.SUCCEEDED:
        return WebhookResult(received=True, intent_id=intent.id, status=intent.status)
    found = await provider.lookup(pidx)
    async with db.session() as session:
        intent = await apply_khalti_lookup(session=session, intent=intent, pidx=pidx, found=found)
    return WebhookResult(received=True, intent_id=intent.id, status=intent.status)


async def apply_khalti_lookup(
    *, session: AsyncSession, intent: PaymentIntent, pidx: str, found: dict[str, Any]
) -> PaymentIntent:
    """Act on a Khalti lookup answer: close an expired or canceled payment, credit a completed one."""
    if found.get("pidx") == pidx and found.get("status") in ("Expired", "User canceled"):
        return await close_intent(session=session, intent_id=intent.id, provider="khalti", status=IntentStatus.CANCELED)
    if found.get("status") != "Completed":
        return intent
    if found.get("pidx") != pidx or found.get("total_amount") != intent.amount:
        raise InvalidInput("Khalti's record does not match the payment", code="amount_mismatch")
    return await credit_intent(
        session=session,
        intent_id=intent.id,
        provider="khalti",
        event_id=f"completed:{pidx}",
        event_type="khalti.completed",
        amount=intent.amount,
        currency="NPR",
    )


@dataclass(frozen=True, slots=True)
class IntentPage:
    items: list[tuple[PaymentIntent, str]]
    next_cursor: str | None


async def list_intents(
    *,
    session: AsyncSession,
    status: str | None = None,
    provider: str | None = None,
    user_id: uuid.UUID | None = None,
    limit: int,
    cursor: str | None = None,
) -> IntentPage:
    """Payments newest first with their buyer's username (admins), optionally filtered."""
    if status is not None and status not in {s.value for s in IntentStatus}:
        raise InvalidInput("status is one of " + ", ".join(s.value for s in IntentStatus), code="invalid_status")
    query = select(PaymentIntent, User.username).join(User, User.id == PaymentIntent.user_id)
    if status is not None:
        query = query.where(PaymentIntent.status == status)
    if provider is not None:
        query = query.where(PaymentIntent.provider == provider)
    if user_id is not None:
        query = query.where(PaymentIntent.user_id == user_id)
    if cursor:
        (last_id,) = decode_cursor(cursor, uuid.UUID)
        query = query.where(PaymentIntent.id < last_id)
    rows = [
        (intent, str(name))
        for intent, name in (await session.execute(query.order_by(PaymentIntent.id.desc()).limit(limit + 1))).all()
    ]
    items = rows[:limit]
    return IntentPage(items, encode_cursor(items[-1][0].id) if len(rows) > limit and items else None)


async def reconcile(*, session: AsyncSession) -> dict[str, Any]:
    """The ledger's invariants plus provider totals: each currency's clearing account must equal
    minus the succeeded payments in that currency."""
    report = await ledger.verify_ledger(session)
    totals = (
        await session.execute(
            select(
                PaymentIntent.provider,
                PaymentIntent.currency,
                func.count(),
                func.sum(PaymentIntent.amount),
                func.sum(PaymentIntent.coins),
            )
            .where(PaymentIntent.status == IntentStatus.SUCCEEDED)
            .group_by(PaymentIntent.provider, PaymentIntent.currency)
            .order_by(PaymentIntent.provider, PaymentIntent.currency)
        )
    ).all()
    provider_totals: list[dict[str, Any]] = []
    by_currency: dict[str, int] = {}
    for p, c, n, a, k in totals:
        provider_totals.append(
            {"provider": p, "currency": c, "payments": int(n), "amount": int(a or 0), "coins": int(k or 0)}
        )
        by_currency[c] = by_currency.get(c, 0) + int(a or 0)
    clearing = dict(
        (
            await session.execute(
                select(LedgerAccount.unit, LedgerAccount.balance).where(LedgerAccount.kind.like("provider_clearing:%"))
            )
        ).all()
    )
    clearing_mismatches = [
        {"currency": c, "clearing_balance": int(clearing.get(c, 0)), "succeeded_payments": by_currency.get(c, 0)}
        for c in sorted(set(clearing) | set(by_currency))
        if int(clearing.get(c, 0)) != -by_currency.get(c, 0)
    ]
    coins_in_wallets = int(
        await session.scalar(
            select(func.coalesce(func.sum(LedgerAccount.balance), 0)).where(
                LedgerAccount.unit == COIN, LedgerAccount.owner_id.is_not(None)
            )
        )
        or 0
    )
    return {
        "ok": report.ok and not clearing_mismatches,
        "accounts_checked": report.accounts_checked,
        "transactions_checked": report.transactions_checked,
        "mismatches": report.mismatches,
        "transactions_unbalanced": report.transactions_unbalanced,
        "negative_balances": report.negative_balances,
        "provider_totals": provider_totals,
        "clearing_mismatches": clearing_mismatches,
        "coins_in_wallets": coins_in_wallets,
    }
