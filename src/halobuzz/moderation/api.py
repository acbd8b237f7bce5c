"""Routes: POST /reports (stable contract), the review queue under /moderation, appeals."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from halobuzz.accounts.deps import CreatorUser, CurrentUser, ModeratorUser, current_user
from halobuzz.accounts.models import User, UserStatus
from halobuzz.ai.service import ai_of
from halobuzz.core.deps import PageDep, RequestMetaDep, RuntimeDep, SessionDep
from halobuzz.core.errors import InvalidInput, NotFound, Unauthorized
from halobuzz.core.runtime import Runtime
from halobuzz.core.security import TokenError
from halobuzz.moderation import images, service, terms

router = APIRouter(tags=["moderation"])
admin_router = APIRouter(prefix="/admin/moderation", tags=["admin"])


async def appellant(request: Request, session: SessionDep) -> User:
    """The signed-in user, or the holder of an appeal token (suspended and banned users)."""
    rt: Runtime = request.app.state.runtime
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        try:
            user_id = rt.jwt.decode_purpose(token, "appeal")
        except TokenError:
            return await current_user(request, session)
        user = await session.get(User, user_id)
        if user is None or user.status == UserStatus.DELETED:
            raise Unauthorized("this account no longer exists", code="invalid_token")
        return user
    return await current_user(request, session)


AppellantUser = Annotated[User, Depends(appellant)]


class ReportIn(BaseModel):
    target_type: Literal["user", "stream", "message", "post"]
    target_id: str = Field(min_length=1, max_length=64)
    reason: Literal["spam", "harassment", "hate", "sexual", "violence", "self_harm", "scam", "impersonation", "other"]
    details: str | None = Field(None, max_length=2000)


class DecisionIn(BaseModel):
    action: Literal["dismiss", "warn", "remove_content", "mute", "timeout", "suspend", "ban"]
    reason: str = Field(min_length=1, max_length=1000)
    duration_days: int | None = Field(None, ge=1, le=365, description="suspend: days")
    duration_minutes: int | None = Field(None, ge=1, le=30 * 24 * 60, description="timeout: minutes without chat")
    stream_id: uuid.UUID | None = Field(None, description="mute of a reported user: the stream whose chat")


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
async def create_report(body: ReportIn, session: SessionDep, user: CurrentUser, rt: RuntimeDep) -> dict[str, Any]:
    """Report a user, stream, chat message or post; duplicates fold into one case."""
    case, created = await service.create_report(
        session=session,
        reporter=user,
        target_type=body.target_type,
        target_id=body.target_id,
        reason=body.reason,
        details=body.details,
        ai=ai_of(rt),
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
        runtime=rt,
        actor=actor,
        case_id=case_id,
        action=body.action,
        reason=body.reason,
        duration_days=body.duration_days,
        duration_minutes=body.duration_minutes,
        stream_id=body.stream_id,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )
    return service.action_out(row)


@router.get("/moderation/log")
async def moderation_log(session: SessionDep, _actor: ModeratorUser) -> list[dict[str, Any]]:
    return await service.moderation_log(session=session)


@router.get("/moderation/me/actions")
async def my_actions(session: SessionDep, user: AppellantUser) -> list[dict[str, Any]]:
    """Decisions against you, with whether each was appealed (an appeal token works here too)."""
    return await service.actions_against(session=session, user_id=user.id)


@router.post("/moderation/actions/{action_id}/appeal", status_code=status.HTTP_201_CREATED)
async def appeal(action_id: uuid.UUID, body: AppealIn, session: SessionDep, user: AppellantUser) -> dict[str, Any]:
    """Appeal a decision once. Suspended or banned users sign in to get an ``appeal_token`` (in the
    403 of ``POST /auth/login``) and send it as the bearer token."""
    return _appeal_out(await service.appeal(session=session, user=user, action_id=action_id, text=body.text))


@router.get("/moderation/appeals")
async def list_appeals(session: SessionDep, _actor: ModeratorUser) -> list[dict[str, Any]]:
    return [_appeal_out(a) for a in await service.list_appeals(session=session)]


@router.post("/moderation/appeals/{appeal_id}/decision")
async def decide_appeal(
    appeal_id: uuid.UUID,
    body: AppealDecisionIn,
    session: SessionDep,
    actor: ModeratorUser,
    meta: RequestMetaDep,
    rt: RuntimeDep,
) -> dict[str, Any]:
    row = await service.decide_appeal(
        session=session,
        runtime=rt,
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


# ----------------------------------------------------------------------------- blocked terms


class TermsIn(BaseModel):
    terms: list[str] = Field(min_length=1, max_length=100)


def _terms_out(rows: list[Any]) -> dict[str, Any]:
    return {"items": [{"term": r.term, "created_at": r.created_at.isoformat()} for r in rows]}


def _channel_rules(rt: Runtime) -> terms.ChannelRules | None:
    found = rt.extras.get("channel_rules")
    return found if isinstance(found, terms.ChannelRules) else None


@router.get("/users/me/blocked-terms", summary="Words and phrases blocked in your streams' chat")
async def list_blocked_terms(session: SessionDep, user: CreatorUser) -> dict[str, Any]:
    return _terms_out(await terms.list_terms(session=session, owner_id=user.id))


@router.post("/users/me/blocked-terms", summary="Block words or phrases in your streams' chat")
async def add_blocked_terms(body: TermsIn, session: SessionDep, user: CreatorUser, rt: RuntimeDep) -> dict[str, Any]:
    return _terms_out(await terms.add_terms(session=session, actor=user, terms=body.terms, rules=_channel_rules(rt)))


@router.delete("/users/me/blocked-terms/{term}", status_code=204, summary="Unblock a word or phrase")
async def remove_blocked_term(term: str, session: SessionDep, user: CreatorUser, rt: RuntimeDep) -> Response:
    await terms.remove_term(session=session, actor=user, term=term, rules=_channel_rules(rt))
    return Response(status_code=204)


# ----------------------------------------------------------------------------- images


def _block_out(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "phash": row.phash,
        "dhash": row.dhash,
        "reason": row.reason,
        "created_by_id": str(row.created_by_id) if row.created_by_id else None,
        "created_at": row.created_at.isoformat(),
    }


class BlockIn(BaseModel):
    phash: str = Field(min_length=16, max_length=16)
    dhash: str = Field(min_length=16, max_length=16)
    reason: str = Field(min_length=1, max_length=500)


@admin_router.get("/image-blocklist", summary="Blocked images by perceptual hash (moderators)")
async def list_image_blocks(session: SessionDep, _actor: ModeratorUser, page: PageDep) -> dict[str, Any]:
    rows, cursor = await images.list_blocks(session=session, limit=page.limit, cursor=page.cursor)
    return {"items": [_block_out(r) for r in rows], "next_cursor": cursor}


@admin_router.post("/image-blocklist", status_code=201, summary="Block an image by its hashes (moderators)")
async def add_image_block_by_hash(body: BlockIn, session: SessionDep, actor: ModeratorUser) -> dict[str, Any]:
    row = await images.add_block(session=session, actor=actor, reason=body.reason, phash=body.phash, dhash=body.dhash)
    return _block_out(row)


@admin_router.post("/image-blocklist/upload", status_code=201, summary="Block an image by uploading it (moderators)")
async def add_image_block_by_upload(
    session: SessionDep,
    actor: ModeratorUser,
    rt: RuntimeDep,
    reason: Annotated[str, Form(min_length=1, max_length=500)],
    file: Annotated[UploadFile, File(description="the image to block (PNG, JPEG or WebP)")],
) -> dict[str, Any]:
    data = await file.read(rt.settings.http.max_upload_bytes + 1)
    if not data:
        raise InvalidInput("the uploaded file is empty", code="invalid_image")
    row = await images.add_block(session=session, actor=actor, reason=reason, image=data)
    return _block_out(row)


@admin_router.delete("/image-blocklist/{block_id}", status_code=204, summary="Unblock an image (moderators)")
async def remove_image_block(block_id: uuid.UUID, session: SessionDep, actor: ModeratorUser) -> Response:
    await images.remove_block(session=session, actor=actor, block_id=block_id)
    return Response(status_code=204)


@router.put("/streams/{stream_id}/thumbnail", summary="Upload a stream's cover image (owner or admin)")
async def upload_thumbnail(
    stream_id: uuid.UUID,
    session: SessionDep,
    user: CurrentUser,
    rt: RuntimeDep,
    file: Annotated[UploadFile, File(description="a PNG, JPEG or WebP image, stored as a 640x360 WebP")],
) -> dict[str, Any]:
    data = await file.read(rt.settings.avatar.max_bytes + 1)
    cover = await images.prepare_cover(runtime=rt, data=data)
    stream = await images.set_thumbnail(
        session=session, runtime=rt, actor=user, stream_id=stream_id, original=data, cover=cover
    )
    assert stream.thumbnail_key is not None
    return {"stream_id": str(stream.id), "thumbnail_url": rt.storage.url(stream.thumbnail_key)}


@router.get("/streams/{stream_id}/thumbnail", summary="A stream's cover image (a redirect to the file)")
async def get_thumbnail(stream_id: uuid.UUID, session: SessionDep, rt: RuntimeDep) -> RedirectResponse:
    from halobuzz.streams.models import Stream

    stream = await session.get(Stream, stream_id)
    if stream is None or stream.deleted_at is not None or not stream.thumbnail_key:
        raise NotFound("this stream has no cover image", code="thumbnail_not_found")
    return RedirectResponse(rt.storage.url(stream.thumbnail_key), status_code=307)


@router.delete("/streams/{stream_id}/thumbnail", status_code=204, summary="Remove a stream's cover image")
async def delete_thumbnail(stream_id: uuid.UUID, session: SessionDep, user: CurrentUser, rt: RuntimeDep) -> Response:
    from halobuzz.streams import service as streams_service

    stream = await streams_service.access_stream_for_owner(session=session, stream_id=stream_id, actor=user, lock=True)
    await images.remove_thumbnail(session=session, runtime=rt, stream=stream)
    return Response(status_code=204)
