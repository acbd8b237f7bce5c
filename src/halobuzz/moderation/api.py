"""Routes: POST /reports (stable contract), the review queue under /moderation, appeals."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from halobuzz.accounts.deps import CurrentUser, ModeratorUser
from halobuzz.core.deps import RequestMetaDep, RuntimeDep, SessionDep
from halobuzz.moderation import service

router = APIRouter(tags=["moderation"])


class ReportIn(BaseModel):
    target_type: Literal["user", "stream", "message", "post"]
    target_id: str = Field(min_length=1, max_length=64)
    reason: Literal["spam", "harassment", "hate", "sexual", "violence", "self_harm", "scam", "impersonation", "other"]
    details: str | None = Field(None, max_length=2000)


class DecisionIn(BaseModel):
    action: Literal["dismiss", "warn", "remove_content", "suspend", "ban"]
    reason: str = Field(min_length=1, max_length=1000)
    duration_days: int | None = Field(None, ge=1, le=365)


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


class AppealIn(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


class AppealDecisionIn(BaseModel):
    reverse: bool
    reason: str = Field(min_length=1, max_length=1000)


def _appeal_out(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "action_id": str(row.action_id),
        "user_id": str(row.user_id),
        "text": row.text,
        "status": row.status,
        "decided_by_id": str(row.decided_by_id) if row.decided_by_id else None,
        "decision_reason": row.decision_reason,
        "created_at": row.created_at.isoformat(),
    }


@router.post("/reports", status_code=status.HTTP_201_CREATED)
async def create_report(body: ReportIn, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    """Report a user, stream, chat message or post; duplicates fold into one case."""
    case, created = await service.create_report(
        session=session,
        reporter=user,
        target_type=body.target_type,
        target_id=body.target_id,
        reason=body.reason,
        details=body.details,
    )
    return {"case_id": str(case.id), "duplicate": not created}


@router.get("/moderation/queue")
async def queue(session: SessionDep, _actor: ModeratorUser) -> list[dict[str, Any]]:
    return [service.case_out(c) for c in await service.queue(session=session)]


@router.post("/moderation/cases/{case_id}/claim")
async def claim(case_id: uuid.UUID, session: SessionDep, actor: ModeratorUser) -> dict[str, Any]:
    return service.case_out(await service.claim(session=session, actor=actor, case_id=case_id))


@router.get("/moderation/cases/{case_id}")
async def case_context(case_id: uuid.UUID, session: SessionDep, _actor: ModeratorUser) -> dict[str, Any]:
    return await service.context(session=session, case_id=case_id)


@router.post("/moderation/cases/{case_id}/notes", status_code=status.HTTP_204_NO_CONTENT)
async def add_note(case_id: uuid.UUID, body: NoteIn, session: SessionDep, actor: ModeratorUser) -> None:
    await service.add_note(session=session, actor=actor, case_id=case_id, note=body.note)


@router.post("/moderation/cases/{case_id}/decision")
async def decide(
    case_id: uuid.UUID,
    body: DecisionIn,
    session: SessionDep,
    actor: ModeratorUser,
    rt: RuntimeDep,
    meta: RequestMetaDep,
) -> dict[str, Any]:
    row = await service.decide(
        session=session,
        sessions=rt.sessions,
        actor=actor,
        case_id=case_id,
        action=body.action,
        reason=body.reason,
        duration_days=body.duration_days,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )
    return service.action_out(row)


@router.get("/moderation/log")
async def moderation_log(session: SessionDep, _actor: ModeratorUser) -> list[dict[str, Any]]:
    return await service.moderation_log(session=session)


@router.post("/moderation/actions/{action_id}/appeal", status_code=status.HTTP_201_CREATED)
async def appeal(action_id: uuid.UUID, body: AppealIn, session: SessionDep, user: CurrentUser) -> dict[str, Any]:
    return _appeal_out(await service.appeal(session=session, user=user, action_id=action_id, text=body.text))


@router.get("/moderation/appeals")
async def list_appeals(session: SessionDep, _actor: ModeratorUser) -> list[dict[str, Any]]:
    return [_appeal_out(a) for a in await service.list_appeals(session=session)]


@router.post("/moderation/appeals/{appeal_id}/decision")
async def decide_appeal(
    appeal_id: uuid.UUID, body: AppealDecisionIn, session: SessionDep, actor: ModeratorUser, meta: RequestMetaDep
) -> dict[str, Any]:
    row = await service.decide_appeal(
        session=session,
        actor=actor,
        appeal_id=appeal_id,
        reverse=body.reverse,
        reason=body.reason,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )
    return _appeal_out(row)


@router.get("/moderation/me/reputation")
async def my_reputation(session: SessionDep, user: CurrentUser) -> dict[str, int]:
    return {"reputation": await service.reputation(session, user.id)}
