"""Per-channel blocked terms: words and phrases a creator does not allow in their streams' chat.

The chat hook reads them through ``ChannelRules`` (cached per stream for a few seconds on each
instance; a creator's change is seen at once on the instance that made it).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.ai.text import tokens
from halobuzz.core import audit
from halobuzz.core.db import Database, after_commit
from halobuzz.core.errors import Conflict, InvalidInput
from halobuzz.moderation.models import ChannelBlockedTerm
from halobuzz.streams.models import Stream

MAX_TERMS = 500
MAX_TERM_LENGTH = 100


def term_key(term: str) -> str:
    """The normalized form a term matches by (casefolded, leetspeak undone, repeated letters squeezed)."""
    return " ".join(tokens(term))


async def list_terms(*, session: AsyncSession, owner_id: uuid.UUID) -> list[ChannelBlockedTerm]:
    rows = await session.scalars(
        select(ChannelBlockedTerm)
        .where(ChannelBlockedTerm.owner_id == owner_id)
        .order_by(ChannelBlockedTerm.created_at)
    )
    return list(rows)


async def add_terms(
    *, session: AsyncSession, actor: User, terms: list[str], rules: ChannelRules | None = None
) -> list[ChannelBlockedTerm]:
    """Block terms in the actor's channels (idempotent per term); returns the whole list."""
    clean: dict[str, str] = {}
    for raw in terms:
        text = " ".join(raw.split())
        if not text or len(text) > MAX_TERM_LENGTH:
            raise InvalidInput(f"terms are 1 to {MAX_TERM_LENGTH} characters", code="invalid_term")
        key = term_key(text)
        if not key:
            raise InvalidInput(f"{text!r} has no letters or digits to match", code="invalid_term")
        clean.setdefault(key, text)
    existing = {t.term_key for t in await list_terms(session=session, owner_id=actor.id)}
    new = {k: v for k, v in clean.items() if k not in existing}
    if len(existing) + len(new) > MAX_TERMS:
        raise Conflict(f"a channel may block at most {MAX_TERMS} terms", code="too_many_terms")
    for key, text in new.items():
        try:
            async with session.begin_nested():
                session.add(ChannelBlockedTerm(owner_id=actor.id, term=text, term_key=key))
        except IntegrityError:  # added by a concurrent request
            pass
    if new:
        await audit.record(
            session,
            action="chat_blocked_terms_add",
            actor_id=actor.id,
            target_type="user",
            target_id=actor.id,
            details={"terms": sorted(new.values())},
        )
    _changed(session, rules, actor.id)
    return await list_terms(session=session, owner_id=actor.id)


async def remove_term(*, session: AsyncSession, actor: User, term: str, rules: ChannelRules | None = None) -> None:
    """Unblock a term (idempotent)."""
    result = await session.execute(
        delete(ChannelBlockedTerm).where(
            ChannelBlockedTerm.owner_id == actor.id, ChannelBlockedTerm.term_key == term_key(term)
        )
    )
    if getattr(result, "rowcount", 0):
        await audit.record(
            session,
            action="chat_blocked_terms_remove",
            actor_id=actor.id,
            target_type="user",
            target_id=actor.id,
            details={"term": term},
        )
    _changed(session, rules, actor.id)


def _changed(session: AsyncSession, rules: ChannelRules | None, owner_id: uuid.UUID) -> None:
    if rules is not None:
        after_commit(session, lambda: rules.forget_owner(owner_id))


@dataclass(frozen=True, slots=True)
class Channel:
    region: str
    owner_id: uuid.UUID
    terms: tuple[str, ...]


class ChannelRules:
    """Per stream: its region and its owner's blocked terms, cached for ``ttl`` seconds."""

    def __init__(self, db: Database, ttl: float = 5.0) -> None:
        self.db, self.ttl = db, ttl
        self._cache: dict[uuid.UUID, tuple[float, Channel]] = {}

    async def get(self, stream_id: uuid.UUID) -> Channel | None:
        now = time.monotonic()
        hit = self._cache.get(stream_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.db.session(write=False) as session:
            row = (await session.execute(select(Stream.region, Stream.owner_id).where(Stream.id == stream_id))).first()
            if row is None:
                return None
            terms = tuple(
                await session.scalars(
                    select(ChannelBlockedTerm.term_key).where(ChannelBlockedTerm.owner_id == row.owner_id)
                )
            )
        channel = Channel(row.region, row.owner_id, terms)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[stream_id] = (now + self.ttl, channel)
        return channel

    def forget_owner(self, owner_id: uuid.UUID) -> None:
        for key in [k for k, (_, c) in self._cache.items() if c.owner_id == owner_id]:
            self._cache.pop(key, None)
