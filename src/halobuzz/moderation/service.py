"""Reports → review queue → action → notification → appeal → reversal, with reputation events.

Every decision is written to the audit log (``moderation.*``: who, what, why, when) and emits a
``moderation.action`` event to the outbox.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts import profile as profile_service
from halobuzz.accounts.models import Role, User, UserStatus
from halobuzz.admin import service as admin_service
from halobuzz.ai.service import AI
from halobuzz.chat import service as chat_service
from halobuzz.chat.models import ChatMessage, MessageStatus
from halobuzz.core import audit, events
from halobuzz.core.clock import utcnow
from halobuzz.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from halobuzz.core.runtime import Runtime
from halobuzz.moderation.models import (
    ModerationAction,
    ModerationAppeal,
    ModerationCase,
    ModerationReport,
    ReputationEvent,
)
from halobuzz.streams.models import Stream

TARGET_TYPES = ("user", "stream", "message", "post")
REASONS = ("spam", "harassment", "hate", "sexual", "violence", "self_harm", "scam", "impersonation", "other")
ACTIONS = ("dismiss", "warn", "remove_content", "mute", "timeout", "suspend", "ban")
# Reputation change per action against the subject (a reversal gives it back).
REPUTATION_DELTA = {
    "dismiss": 0,
    "warn": -5,
    "remove_content": -10,
    "mute": -10,
    "timeout": -15,
    "suspend": -25,
    "ban": -60,
}
UNTITLED = "Untitled stream"


def score_of(points: int) -> int:
    """A reputation score (0..100) from the sum of a user's reputation events."""
    return max(0, min(100, 100 + points))


async def reputation(session: AsyncSession, user_id: uuid.UUID) -> int:
    points = await session.scalar(select(User.reputation_points).where(User.id == user_id))
    return score_of(int(points or 0))


async def add_reputation_event(
    session: AsyncSession, *, user_id: uuid.UUID, delta: int, reason: str, action_id: uuid.UUID | None
) -> None:
    """Record a reputation event and move the user's running sum with it (atomically, in SQL)."""
    session.add(ReputationEvent(user_id=user_id, delta=delta, reason=reason, action_id=action_id))
    await session.execute(
        update(User)
        .where(User.id == user_id)
        .values(reputation_points=User.reputation_points + delta)
        .execution_options(synchronize_session=False)
    )


async def _target(session: AsyncSession, target_type: str, target_id: str) -> tuple[uuid.UUID | None, str, int]:
    """The subject user, the text to score, and the audience size of a report's target."""
    try:
        key = uuid.UUID(target_id)
    except ValueError:
        raise InvalidInput("target_id must be a UUID", code="invalid_target") from None
    if target_type == "user":
        user = await session.get(User, key)
        if user is None:
            raise NotFound("no such user", code="target_not_found")
        return user.id, f"{user.display_name} {user.bio or ''}", 0
    if target_type == "stream":
        stream = await session.get(Stream, key)
        if stream is None:
            raise NotFound("no such stream", code="target_not_found")
        audience = int(getattr(stream, "viewer_count", 0) or 0)
        return stream.owner_id, f"{stream.title or ''} {getattr(stream, 'description', '') or ''}", audience
    if target_type == "message":
        message = await session.get(ChatMessage, key)
        if message is None:
            raise NotFound("no such message", code="target_not_found")
        return message.user_id, message.text, 0
    raise InvalidInput("reports of posts are not supported yet", code="invalid_target")


async def create_report(
    *,
    session: AsyncSession,
    reporter: User,
    target_type: str,
    target_id: str,
    reason: str,
    details: str | None,
    ai: AI,
) -> tuple[ModerationCase, bool]:
    """File a report; a report of a target with an open case folds into it. Returns (case, created)."""
    subject_id, text, audience = await _target(session, target_type, target_id)
    if subject_id == reporter.id:
        raise InvalidInput("you cannot report yourself", code="self_report")
    open_key = f"{target_type}:{target_id}"
    case = await session.scalar(select(ModerationCase).where(ModerationCase.open_key == open_key))
    if case is None:
        ai_score = int((await ai.moderate(text))[0].score * 100) if text.strip() else 0
        case = ModerationCase(
            target_type=target_type,
            target_id=target_id,
            open_key=open_key,
            subject_user_id=subject_id,
            ai_score=ai_score,
            report_count=0,
            priority=0,
            status="open",
        )
        try:
            async with session.begin_nested():
                session.add(case)
                await session.flush()
        except IntegrityError:
            raise Conflict("this target was reported at the same moment; try again", code="report_race") from None
    existing = await session.scalar(
        select(ModerationReport).where(ModerationReport.case_id == case.id, ModerationReport.reporter_id == reporter.id)
    )
    if existing is not None:
        return case, False
    session.add(ModerationReport(case_id=case.id, reporter_id=reporter.id, reason=reason, details=details))
    trust = await reputation(session, reporter.id)
    case.report_count += 1
    # Priority: reporter trust (0..100) + AI score (0..100) + audience (log-ish, capped) per report.
    case.priority += trust + case.ai_score + min(100, audience)
    await session.flush()
    return case, True


async def open_auto_case(
    *,
    session: AsyncSession,
    target_type: str,
    target_id: uuid.UUID,
    subject_id: uuid.UUID | None,
    score: float,
    labels: dict[str, float],
    fields: list[str],
) -> ModerationCase:
    """Put content the AI held for review in the queue (or raise the priority of its open case)."""
    open_key = f"{target_type}:{target_id}"
    ai_score = int(score * 100)
    case = await session.scalar(select(ModerationCase).where(ModerationCase.open_key == open_key).with_for_update())
    if case is None:
        case = ModerationCase(
            target_type=target_type,
            target_id=str(target_id),
            open_key=open_key,
            subject_user_id=subject_id,
            ai_score=ai_score,
            report_count=0,
            priority=ai_score,
            status="open",
        )
        try:
            async with session.begin_nested():
                session.add(case)
                await session.flush()
        except IntegrityError:
            case = await session.scalar(select(ModerationCase).where(ModerationCase.open_key == open_key))
            assert case is not None
    else:
        case.ai_score = max(case.ai_score, ai_score)
        case.priority += ai_score
    await audit.record(
        session,
        action="moderation.auto_hold",
        actor_id=None,
        target_type="case",
        target_id=case.id,
        details={"target_type": target_type, "target_id": str(target_id), "labels": labels, "fields": fields},
    )
    await session.flush()
    return case


async def queue(*, session: AsyncSession, limit: int = 50) -> list[ModerationCase]:
    rows = await session.scalars(
        select(ModerationCase)
        .where(ModerationCase.status != "closed")
        .order_by(ModerationCase.priority.desc(), ModerationCase.created_at)
        .limit(limit)
    )
    return list(rows)


async def _case(session: AsyncSession, case_id: uuid.UUID, *, lock: bool = False) -> ModerationCase:
    stmt = select(ModerationCase).where(ModerationCase.id == case_id)
    if lock:
        stmt = stmt.with_for_update()
    case = await session.scalar(stmt)
    if case is None:
        raise NotFound("no such case", code="case_not_found")
    return case


async def claim(*, session: AsyncSession, actor: User, case_id: uuid.UUID) -> ModerationCase:
    case = await _case(session, case_id, lock=True)
    if case.status == "closed":
        raise Conflict("this case is closed", code="case_closed")
    if case.claimed_by_id not in (None, actor.id):
        raise Conflict("another moderator has claimed this case", code="case_claimed")
    case.status, case.claimed_by_id = "claimed", actor.id
    await session.flush()
    await audit.record(session, action="moderation.claim", actor_id=actor.id, target_type="case", target_id=case.id)
    return case


async def context(*, session: AsyncSession, case_id: uuid.UUID) -> dict[str, Any]:
    """The case with its reports, the message and its neighbours, and the subject's history."""
    case = await _case(session, case_id)
    reports = list(await session.scalars(select(ModerationReport).where(ModerationReport.case_id == case.id)))
    neighbours: list[dict[str, Any]] = []
    if case.target_type == "message":
        message = await session.get(ChatMessage, uuid.UUID(case.target_id))
        if message is not None:
            before = await session.scalars(
                select(ChatMessage)
                .where(ChatMessage.stream_id == message.stream_id, ChatMessage.created_at < message.created_at)
                .order_by(ChatMessage.created_at.desc())
                .limit(5)
            )
            after = await session.scalars(
                select(ChatMessage)
                .where(ChatMessage.stream_id == message.stream_id, ChatMessage.created_at > message.created_at)
                .order_by(ChatMessage.created_at)
                .limit(5)
            )
            rows = [*reversed(list(before)), message, *after]
            neighbours = [
                {
                    "id": str(m.id),
                    "user_id": str(m.user_id),
                    "text": m.text,
                    "status": m.status,
                    "created_at": m.created_at.isoformat(),
                    "target": m.id == message.id,
                }
                for m in rows
            ]
    target: dict[str, Any] | None = None
    if case.target_type == "user":
        user = await session.get(User, uuid.UUID(case.target_id))
        if user is not None:
            target = {"username": user.username, "display_name": user.display_name, "bio": user.bio}
    elif case.target_type == "stream":
        stream = await session.get(Stream, uuid.UUID(case.target_id))
        if stream is not None:
            target = {"title": stream.title, "description": stream.description, "status": stream.status}
    history: list[dict[str, Any]] = []
    score = None
    if case.subject_user_id is not None:
        actions = await session.scalars(
            select(ModerationAction)
            .where(ModerationAction.subject_user_id == case.subject_user_id)
            .order_by(ModerationAction.created_at.desc())
            .limit(50)
        )
        history = [action_out(a) for a in actions]
        score = await reputation(session, case.subject_user_id)
    return {
        "case": case_out(case),
        "reports": [
            {
                "reporter_id": str(r.reporter_id),
                "reason": r.reason,
                "details": r.details,
                "created_at": r.created_at.isoformat(),
            }
            for r in reports
        ],
        "messages": neighbours,
        "target": target,
        "history": history,
        "reputation": score,
    }


def case_out(case: ModerationCase) -> dict[str, Any]:
    return {
        "id": str(case.id),
        "target_type": case.target_type,
        "target_id": case.target_id,
        "subject_user_id": str(case.subject_user_id) if case.subject_user_id else None,
        "status": case.status,
        "priority": case.priority,
        "report_count": case.report_count,
        "ai_score": case.ai_score / 100,
        "claimed_by_id": str(case.claimed_by_id) if case.claimed_by_id else None,
        "created_at": case.created_at.isoformat(),
    }


def action_out(action: ModerationAction) -> dict[str, Any]:
    return {
        "id": str(action.id),
        "case_id": str(action.case_id),
        "subject_user_id": str(action.subject_user_id) if action.subject_user_id else None,
        "moderator_id": str(action.moderator_id) if action.moderator_id else None,
        "action": action.action,
        "reason": action.reason,
        "duration_days": action.duration_days,
        "details": dict(action.details or {}),
        "created_at": action.created_at.isoformat(),
        "reversed_at": action.reversed_at.isoformat() if action.reversed_at else None,
    }


def _notify(session: AsyncSession, user_id: uuid.UUID | None, kind: str, data: dict[str, Any]) -> None:
    """Tell the user about a decision: the `moderation.action` outbox event becomes their
    notification (with the reason) in `halobuzz.notifications.consumers.on_moderation_action`."""
    if user_id is None:
        return
    events.emit(session, "moderation.action", {"user_id": str(user_id), "kind": kind, **data})


async def _stream_of_case(session: AsyncSession, case: ModerationCase, stream_id: uuid.UUID | None) -> uuid.UUID:
    """The stream a mute applies to: the reported message's or stream's, else the one named."""
    if case.target_type == "message":
        message = await session.get(ChatMessage, uuid.UUID(case.target_id))
        if message is not None:
            return message.stream_id
    if case.target_type == "stream":
        return uuid.UUID(case.target_id)
    if stream_id is None:
        raise InvalidInput("a mute needs stream_id: the stream whose chat the user is muted in", code="stream_required")
    return stream_id


async def _remove_content(session: AsyncSession, runtime: Runtime, actor: User, case: ModerationCase) -> dict[str, Any]:
    """Take the reported content down; returns what is needed to put it back after a reversed appeal."""
    from halobuzz.realtime.asgi import gateway_of

    key = uuid.UUID(case.target_id)
    if case.target_type == "message":
        message = await session.get(ChatMessage, key)
        if message is None:
            raise NotFound("the message is gone", code="target_not_found")
        gateway = gateway_of(runtime)
        await chat_service.delete_message(
            session=session,
            actor=actor,
            stream_id=message.stream_id,
            message_id=message.id,
            recent=gateway,
            events=gateway,
        )
        return {"message_id": str(message.id), "stream_id": str(message.stream_id)}
    if case.target_type == "user":
        user = await session.get(User, key)
        if user is None:
            raise NotFound("the user is gone", code="target_not_found")
        before = {"display_name": user.display_name, "bio": user.bio}
        user.display_name, user.bio = user.username, ""
        if user.avatar_key:
            await profile_service.remove_avatar(session=session, storage=runtime.storage, actor=user)
        await session.flush()
        return {"profile": before, "avatar_removed": True}
    if case.target_type == "stream":
        stream = await session.get(Stream, key)
        if stream is None:
            raise NotFound("the stream is gone", code="target_not_found")
        before = {"title": stream.title, "description": stream.description}
        stream.title, stream.description, stream.auto_tags = UNTITLED, "", []
        if stream.thumbnail_key:
            from halobuzz.moderation import images as image_service

            await image_service.remove_thumbnail(session=session, runtime=runtime, stream=stream)
        await session.flush()
        runtime.cache.invalidate("streams")
        return {"stream": before}
    raise InvalidInput("this content cannot be removed here", code="invalid_action")


async def decide(
    *,
    session: AsyncSession,
    runtime: Runtime,
    actor: User,
    case_id: uuid.UUID,
    action: str,
    reason: str,
    duration_days: int | None,
    duration_minutes: int | None = None,
    stream_id: uuid.UUID | None = None,
    ip: str | None,
    user_agent: str | None,
) -> ModerationAction:
    """Decide a claimed case: the action takes effect in this transaction (sessions revoked, chat
    muted, content removed); the subject is told through the outbox (``moderation.action``)."""
    from halobuzz.realtime.asgi import gateway_of

    case = await _case(session, case_id, lock=True)
    if case.status == "closed":
        raise Conflict("this case is already decided", code="case_closed")
    if case.claimed_by_id != actor.id:
        raise Conflict("claim the case before deciding it", code="case_not_claimed")
    subject = case.subject_user_id
    if action != "dismiss" and subject is None:
        raise Conflict("this case has no user to act on", code="no_subject")
    details: dict[str, Any] = {}
    if action == "suspend":
        if not duration_days:
            raise InvalidInput("a suspension needs duration_days", code="invalid_duration")
        assert subject is not None
        await admin_service.suspend_user(
            session=session,
            sessions=runtime.sessions,
            actor=actor,
            user_id=subject,
            until=utcnow() + timedelta(days=duration_days),
            reason=reason,
            ip=ip,
            user_agent=user_agent,
        )
    elif action == "ban":
        assert subject is not None
        await admin_service.ban_user(
            session=session,
            sessions=runtime.sessions,
            actor=actor,
            user_id=subject,
            reason=reason,
            ip=ip,
            user_agent=user_agent,
        )
    elif action == "timeout":
        if not duration_minutes:
            raise InvalidInput("a timeout needs duration_minutes", code="invalid_duration")
        assert subject is not None
        until = utcnow() + timedelta(minutes=duration_minutes)
        await session.execute(
            update(User)
            .where(User.id == subject)
            .values(chat_muted_until=until)
            .execution_options(synchronize_session=False)
        )
        details = {"duration_minutes": duration_minutes, "until": until.isoformat()}
    elif action == "mute":
        assert subject is not None
        where = await _stream_of_case(session, case, stream_id)
        await chat_service.ban_user(
            session=session, actor=actor, stream_id=where, user_id=subject, reason=reason, events=gateway_of(runtime)
        )
        details = {"stream_id": str(where)}
    elif action == "remove_content":
        details = await _remove_content(session, runtime, actor, case)
    row = ModerationAction(
        case_id=case.id,
        subject_user_id=subject,
        moderator_id=actor.id,
        action=action,
        reason=reason,
        duration_days=duration_days if action == "suspend" else None,
        details=details,
    )
    session.add(row)
    case.status, case.open_key, case.closed_at = "closed", None, utcnow()
    await session.flush()
    if subject is not None and REPUTATION_DELTA[action]:
        await add_reputation_event(
            session, user_id=subject, delta=REPUTATION_DELTA[action], reason=f"action.{action}", action_id=row.id
        )
    if action == "dismiss":
        # Reporters of a dismissed case lose a little trust; the subject is not told.
        for reporter_id in list(
            await session.scalars(select(ModerationReport.reporter_id).where(ModerationReport.case_id == case.id))
        ):
            await add_reputation_event(
                session, user_id=reporter_id, delta=-1, reason="report.dismissed", action_id=row.id
            )
    else:
        _notify(
            session,
            subject,
            "action",
            {
                "action_id": str(row.id),
                "action": action,
                "reason": reason,
                "duration_days": row.duration_days,
                "target_type": case.target_type,
                "target_id": case.target_id,
                "moderator_id": str(actor.id),
                **{k: v for k, v in details.items() if k in ("duration_minutes", "until", "stream_id")},
            },
        )
    await audit.record(
        session,
        action=f"moderation.{action}",
        actor_id=actor.id,
        target_type="case",
        target_id=case.id,
        ip=ip,
        user_agent=user_agent,
        details={
            "reason": reason,
            "subject_user_id": str(subject) if subject else None,
            "duration_days": row.duration_days,
            **details,
        },
    )
    await session.flush()
    return row


async def add_note(*, session: AsyncSession, actor: User, case_id: uuid.UUID, note: str) -> None:
    case = await _case(session, case_id)
    await audit.record(
        session,
        action="moderation.note",
        actor_id=actor.id,
        target_type="case",
        target_id=case.id,
        details={"note": note},
    )


async def appeal(*, session: AsyncSession, user: User, action_id: uuid.UUID, text: str) -> ModerationAppeal:
    action = await session.get(ModerationAction, action_id)
    if action is None or action.subject_user_id != user.id or action.action == "dismiss":
        raise NotFound("no such action against you", code="action_not_found")
    if await session.scalar(select(ModerationAppeal.id).where(ModerationAppeal.action_id == action_id)):
        raise Conflict("this action has already been appealed", code="already_appealed")
    row = ModerationAppeal(action_id=action_id, user_id=user.id, text=text, status="pending")
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise Conflict("this action has already been appealed", code="already_appealed") from None
    return row


async def actions_against(*, session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """Decisions against a user (dismissals aside), newest first, with their appeal's status."""
    rows = (
        await session.execute(
            select(ModerationAction, ModerationAppeal.status)
            .outerjoin(ModerationAppeal, ModerationAppeal.action_id == ModerationAction.id)
            .where(ModerationAction.subject_user_id == user_id, ModerationAction.action != "dismiss")
            .order_by(ModerationAction.created_at.desc())
            .limit(100)
        )
    ).all()
    return [{**action_out(a), "appeal_status": status} for a, status in rows]


async def list_appeals(*, session: AsyncSession) -> list[ModerationAppeal]:
    return list(
        await session.scalars(
            select(ModerationAppeal).where(ModerationAppeal.status == "pending").order_by(ModerationAppeal.created_at)
        )
    )


async def _reverse(session: AsyncSession, runtime: Runtime, actor: User, action: ModerationAction) -> None:
    """Undo what an action did (the account part — suspend, ban — is handled by the caller)."""
    details = dict(action.details or {})
    case = await session.get(ModerationCase, action.case_id)
    if action.action == "timeout" and action.subject_user_id is not None:
        await session.execute(
            update(User)
            .where(User.id == action.subject_user_id)
            .values(chat_muted_until=None)
            .execution_options(synchronize_session=False)
        )
    elif action.action == "mute" and action.subject_user_id is not None and details.get("stream_id"):
        await chat_service.lift_ban(
            session=session, actor=actor, stream_id=uuid.UUID(details["stream_id"]), user_id=action.subject_user_id
        )
    elif action.action == "remove_content" and case is not None:
        if case.target_type == "message":
            message = await session.get(ChatMessage, uuid.UUID(case.target_id))
            if message is not None and message.status == MessageStatus.DELETED:
                message.status, message.deleted_at, message.deleted_by_id = MessageStatus.VISIBLE.value, None, None
        elif case.target_type == "user" and isinstance(details.get("profile"), dict):
            user = await session.get(User, uuid.UUID(case.target_id))
            if user is not None:
                user.display_name = str(details["profile"].get("display_name") or user.username)
                user.bio = str(details["profile"].get("bio") or "")
        elif case.target_type == "stream" and isinstance(details.get("stream"), dict):
            stream = await session.get(Stream, uuid.UUID(case.target_id))
            if stream is not None and stream.title == UNTITLED:
                stream.title = str(details["stream"].get("title") or UNTITLED)
                stream.description = str(details["stream"].get("description") or "")
                runtime.cache.invalidate("streams")
    await session.flush()


async def decide_appeal(
    *,
    session: AsyncSession,
    runtime: Runtime,
    actor: User,
    appeal_id: uuid.UUID,
    reverse: bool,
    reason: str,
    ip: str | None,
    user_agent: str | None,
) -> ModerationAppeal:
    row = await session.scalar(select(ModerationAppeal).where(ModerationAppeal.id == appeal_id).with_for_update())
    if row is None:
        raise NotFound("no such appeal", code="appeal_not_found")
    if row.status != "pending":
        raise Conflict("this appeal is already decided", code="appeal_decided")
    action = await session.get(ModerationAction, row.action_id)
    assert action is not None
    if action.moderator_id == actor.id:
        raise Forbidden("a different moderator must decide the appeal", code="same_moderator")
    row.status, row.decided_by_id, row.decision_reason, row.decided_at = (
        "reversed" if reverse else "upheld",
        actor.id,
        reason,
        utcnow(),
    )
    if reverse:
        action.reversed_at = utcnow()
        subject = await session.get(User, row.user_id)
        if (
            action.action in ("suspend", "ban")
            and subject is not None
            and subject.status in (UserStatus.SUSPENDED, UserStatus.BANNED)
        ):
            if action.action == "ban" and not actor.has_role(Role.ADMIN):
                raise Forbidden("only administrators can lift a ban", code="insufficient_role")
            await admin_service.reinstate_user(
                session=session,
                actor=actor,
                user_id=row.user_id,
                reason=f"appeal: {reason}",
                ip=ip,
                user_agent=user_agent,
            )
        await _reverse(session, runtime, actor, action)
        delta = -REPUTATION_DELTA[action.action]
        if delta:
            await add_reputation_event(
                session, user_id=row.user_id, delta=delta, reason="appeal.reversed", action_id=action.id
            )
    _notify(
        session,
        row.user_id,
        "appeal",
        {"action_id": str(action.id), "appeal_id": str(row.id), "outcome": row.status, "reason": reason},
    )
    await audit.record(
        session,
        action=f"moderation.appeal.{row.status}",
        actor_id=actor.id,
        target_type="appeal",
        target_id=row.id,
        ip=ip,
        user_agent=user_agent,
        details={"reason": reason, "action_id": str(action.id)},
    )
    await session.flush()
    return row


async def moderation_log(*, session: AsyncSession, limit: int = 100) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(audit.AuditLog)
        .where(audit.AuditLog.action.like("moderation.%"))
        .order_by(audit.AuditLog.created_at.desc())
        .limit(limit)
    )
    return [
        {
            "actor_id": str(r.actor_id) if r.actor_id else None,
            "action": r.action,
            "target_type": r.target_type,
            "target_id": r.target_id,
            "details": r.details,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]
