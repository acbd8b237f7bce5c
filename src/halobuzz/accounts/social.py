"""The social graph: follows and blocks, and the counters they keep on ``user``.

Counters change in SQL (``count = count + 1``) in the transaction that inserts or deletes the
``follow`` row, and only when a row really was inserted (``INSERT … ON CONFLICT DO NOTHING …
RETURNING``) or deleted (``DELETE … RETURNING``), so repeated and racing requests keep
``follower_count`` equal to the number of rows.

Every change between two users first locks both user rows in id order (``SELECT … FOR UPDATE``
on PostgreSQL; SQLite serialises write transactions anyway). That orders a follow against a
concurrent block of the same pair, so a block can never leave a follow behind, and taking the
locks in one global order means two changes never deadlock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, and_, case, delete, exists, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import Block, Follow, User, UserStatus
from halobuzz.accounts.profile import HIDDEN_STATUSES, get_user_by_ref
from halobuzz.core import events
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import Forbidden, InvalidInput
from halobuzz.core.pagination import DEFAULT_LIMIT, decode_cursor, encode_cursor


@dataclass(frozen=True, slots=True)
class FollowState:
    user_id: uuid.UUID
    following: bool
    follower_count: int


@dataclass(frozen=True, slots=True)
class BlockState:
    user_id: uuid.UUID
    blocked: bool


@dataclass(frozen=True, slots=True)
class UserPage:
    items: list[User]
    next_cursor: str | None


def _insert_ignoring_duplicates(session: AsyncSession, table: Any, values: dict[str, Any]) -> Insert:
    """``INSERT … ON CONFLICT DO NOTHING`` in the session's dialect."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement: Insert = module.insert(table).values(**values).on_conflict_do_nothing()
    return statement


async def _lock_pair(session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> dict[uuid.UUID, int]:
    """Lock both users' rows in id order; their follower counts as committed now."""
    rows = await session.execute(
        select(User.id, User.follower_count).where(User.id.in_((a, b))).order_by(User.id).with_for_update()
    )
    return {row.id: row.follower_count for row in rows}


async def _adjust_counts(
    session: AsyncSession, edges: list[tuple[uuid.UUID, uuid.UUID]], sign: int
) -> dict[uuid.UUID, int]:
    """Add ``sign`` per (follower, followee) edge to the two counters in one UPDATE; new follower counts."""
    if not edges:
        return {}
    followers = [edge[0] for edge in edges]
    followees = [edge[1] for edge in edges]
    ids = set(followers) | set(followees)

    def delta(targets: list[uuid.UUID]) -> Any:
        whens = [(User.id == target, sign * targets.count(target)) for target in set(targets)]
        return case(*whens, else_=0)

    result = await session.execute(
        update(User)
        .where(User.id.in_(ids))
        .values(
            follower_count=User.follower_count + delta(followees),
            following_count=User.following_count + delta(followers),
        )
        .returning(User.id, User.follower_count)
        .execution_options(synchronize_session=False)
    )
    return {row.id: row.follower_count for row in result}


def _not_self(actor: User, target: User, verb: str) -> None:
    if actor.id == target.id:
        raise InvalidInput(f"you cannot {verb} yourself", code=f"cannot_{verb}_self")


async def is_blocked(*, session: AsyncSession, blocker_id: uuid.UUID, blocked_id: uuid.UUID) -> bool:
    """Whether ``blocker_id`` has blocked ``blocked_id``."""
    found = await session.scalar(select(exists().where(Block.blocker_id == blocker_id, Block.blocked_id == blocked_id)))
    return bool(found)


async def blocked_either_way(*, session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> bool:
    """Whether either of ``a`` and ``b`` has blocked the other (for chat, gifts, mentions)."""
    found = await session.scalar(
        select(
            exists().where(
                or_(
                    and_(Block.blocker_id == a, Block.blocked_id == b),
                    and_(Block.blocker_id == b, Block.blocked_id == a),
                )
            )
        )
    )
    return bool(found)


async def follow(*, session: AsyncSession, actor: User, target_ref: str) -> FollowState:
    """Make ``actor`` follow the user ``target_ref`` names; following again changes nothing."""
    target = await get_user_by_ref(session=session, ref=target_ref, viewer=actor)
    _not_self(actor, target, "follow")
    counts = await _lock_pair(session, actor.id, target.id)
    blocks = set(
        (
            await session.execute(
                select(Block.blocker_id).where(
                    or_(
                        and_(Block.blocker_id == actor.id, Block.blocked_id == target.id),
                        and_(Block.blocker_id == target.id, Block.blocked_id == actor.id),
                    )
                )
            )
        ).scalars()
    )
    if target.id in blocks:
        raise Forbidden("this user has blocked you; you cannot follow them", code="blocked")
    if actor.id in blocks:
        raise Forbidden("you have blocked this user; unblock them before following", code="blocked")
    inserted = await session.execute(
        _insert_ignoring_duplicates(
            session, Follow, {"follower_id": actor.id, "followee_id": target.id, "created_at": utcnow()}
        ).returning(Follow.follower_id)
    )
    if inserted.first() is not None:
        counts = await _adjust_counts(session, [(actor.id, target.id)], +1)
        events.emit(
            session,
            "user.new_follower",
            {"user_id": target.id, "follower_id": actor.id, "follower_username": actor.username},
            actor_id=actor.id,
        )
    return FollowState(target.id, True, counts[target.id])


async def unfollow(*, session: AsyncSession, actor: User, target_ref: str) -> FollowState:
    """Make ``actor`` stop following ``target_ref``; unfollowing again changes nothing."""
    target = await get_user_by_ref(session=session, ref=target_ref, viewer=actor, include_banned=True)
    _not_self(actor, target, "unfollow")
    counts = await _lock_pair(session, actor.id, target.id)
    deleted = await session.execute(
        delete(Follow)
        .where(Follow.follower_id == actor.id, Follow.followee_id == target.id)
        .returning(Follow.follower_id)
    )
    if deleted.first() is not None:
        counts = await _adjust_counts(session, [(actor.id, target.id)], -1)
    return FollowState(target.id, False, counts[target.id])


async def block(*, session: AsyncSession, actor: User, target_ref: str) -> BlockState:
    """Make ``actor`` block ``target_ref``, ending follows in both directions; blocking again changes nothing."""
    target = await get_user_by_ref(session=session, ref=target_ref, viewer=actor, include_banned=True)
    _not_self(actor, target, "block")
    await _lock_pair(session, actor.id, target.id)
    await session.execute(
        _insert_ignoring_duplicates(
            session, Block, {"blocker_id": actor.id, "blocked_id": target.id, "created_at": utcnow()}
        )
    )
    removed = await session.execute(
        delete(Follow)
        .where(
            or_(
                and_(Follow.follower_id == actor.id, Follow.followee_id == target.id),
                and_(Follow.follower_id == target.id, Follow.followee_id == actor.id),
            )
        )
        .returning(Follow.follower_id, Follow.followee_id)
    )
    await _adjust_counts(session, [(row.follower_id, row.followee_id) for row in removed], -1)
    return BlockState(target.id, True)


async def unblock(*, session: AsyncSession, actor: User, target_ref: str) -> BlockState:
    """Lift ``actor``'s block of ``target_ref`` (follows are not restored); unblocking again changes nothing."""
    target = await get_user_by_ref(session=session, ref=target_ref, viewer=actor, include_banned=True)
    _not_self(actor, target, "unblock")
    await session.execute(delete(Block).where(Block.blocker_id == actor.id, Block.blocked_id == target.id))
    return BlockState(target.id, False)


def _decode_edge_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    at, last_id = decode_cursor(cursor, datetime, uuid.UUID)
    if at.tzinfo is None:
        raise InvalidInput("cursor is not valid; use next_cursor from a previous page", code="invalid_cursor")
    return at, last_id


async def _edge_page(
    session: AsyncSession,
    *,
    table: Any,
    owner_column: Any,
    other_column: Any,
    owner_id: uuid.UUID,
    limit: int,
    cursor: str | None,
    statuses: tuple[str, ...],
) -> UserPage:
    """Users at the other end of ``owner_id``'s edges, newest edge first (keyset on created_at, other id)."""
    query = (
        select(User, table.created_at)
        .join(table, other_column == User.id)
        .where(owner_column == owner_id, User.status.not_in(statuses))
    )
    if cursor:
        at, last_id = _decode_edge_cursor(cursor)
        query = query.where(tuple_(table.created_at, other_column) < tuple_(at, last_id))
    query = query.order_by(table.created_at.desc(), other_column.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1][1], rows[-1][0].id) if more else None
    return UserPage([row[0] for row in rows], next_cursor)


async def list_followers(
    *, session: AsyncSession, ref: str, viewer: User | None, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> UserPage:
    """Who follows the user ``ref`` names, most recent first."""
    user = await get_user_by_ref(session=session, ref=ref, viewer=viewer)
    return await _edge_page(
        session,
        table=Follow,
        owner_column=Follow.followee_id,
        other_column=Follow.follower_id,
        owner_id=user.id,
        limit=limit,
        cursor=cursor,
        statuses=HIDDEN_STATUSES,
    )


async def list_following(
    *, session: AsyncSession, ref: str, viewer: User | None, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> UserPage:
    """Whom the user ``ref`` names follows, most recent first."""
    user = await get_user_by_ref(session=session, ref=ref, viewer=viewer)
    return await _edge_page(
        session,
        table=Follow,
        owner_column=Follow.follower_id,
        other_column=Follow.followee_id,
        owner_id=user.id,
        limit=limit,
        cursor=cursor,
        statuses=HIDDEN_STATUSES,
    )


async def list_blocks(
    *, session: AsyncSession, actor: User, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> UserPage:
    """The users ``actor`` has blocked, most recent first (banned ones too, so they can be unblocked)."""
    return await _edge_page(
        session,
        table=Block,
        owner_column=Block.blocker_id,
        other_column=Block.blocked_id,
        owner_id=actor.id,
        limit=limit,
        cursor=cursor,
        statuses=(UserStatus.DELETED.value,),
    )
