"""Routes: a creator's KYC (/kyc) and the admins' review (/admin/kyc)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from pydantic import BaseModel, Field

from halobuzz.accounts.deps import AdminUser, CreatorUser, CurrentUser
from halobuzz.core.deps import PageDep, RequestMetaDep, RuntimeDep, SessionDep
from halobuzz.kyc import service
from halobuzz.kyc.models import KycDocument, KycSubmission

router = APIRouter(tags=["kyc"])
admin_router = APIRouter(prefix="/admin/kyc", tags=["admin"])


class DocumentOut(BaseModel):
    id: uuid.UUID
    document_type: str
    content_type: str
    size: int
    created_at: datetime

    @classmethod
    def of(cls, doc: KycDocument) -> DocumentOut:
        return cls(
            id=doc.id,
            document_type=doc.document_type,
            content_type=doc.content_type,
            size=doc.size,
            created_at=doc.created_at,
        )


class KycOut(BaseModel):
    status: str = Field(description="none, draft, pending, approved, rejected or revoked")
    submission_id: uuid.UUID | None
    reason: str | None
    submitted_at: datetime | None
    decided_at: datetime | None
    documents: list[DocumentOut]


def _kyc_out(state: service.KycState) -> KycOut:
    sub = state.submission
    return KycOut(
        status=state.status,
        submission_id=sub.id if sub else None,
        reason=sub.reason if sub else None,
        submitted_at=sub.submitted_at if sub else None,
        decided_at=sub.decided_at if sub else None,
        documents=[DocumentOut.of(d) for d in state.documents],
    )


class SubmissionOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    username: str | None = None
    status: str
    reason: str | None
    reviewed_by_id: uuid.UUID | None
    created_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    documents: list[DocumentOut] | None = None

    @classmethod
    def of(
        cls, row: KycSubmission, username: str | None = None, documents: list[KycDocument] | None = None
    ) -> SubmissionOut:
        return cls(
            id=row.id,
            user_id=row.user_id,
            username=username,
            status=row.status,
            reason=row.reason,
            reviewed_by_id=row.reviewed_by_id,
            created_at=row.created_at,
            submitted_at=row.submitted_at,
            decided_at=row.decided_at,
            documents=[DocumentOut.of(d) for d in documents] if documents is not None else None,
        )


class SubmissionPageOut(BaseModel):
    items: list[SubmissionOut]
    next_cursor: str | None


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


class ApproveIn(BaseModel):
    reason: str = Field("", max_length=1000)


class ReencryptOut(BaseModel):
    reencrypted: int
    failed: int
    remaining: int
    active_key_id: str


@router.get("/kyc", response_model=KycOut, summary="Your identity verification status")
async def my_kyc(user: CurrentUser, session: SessionDep) -> KycOut:
    return _kyc_out(await service.get_state(session=session, user_id=user.id))


@router.post(
    "/kyc/documents",
    response_model=DocumentOut,
    status_code=201,
    summary="Upload an identity document (JPEG, PNG, WebP or PDF; encrypted at rest)",
    responses={413: {"description": "file too large"}, 415: {"description": "not a JPEG, PNG, WebP or PDF"}},
)
async def upload_document(
    user: CreatorUser,
    session: SessionDep,
    rt: RuntimeDep,
    document_type: Annotated[str, Form(description=", ".join(service.DOCUMENT_TYPES))],
    file: Annotated[UploadFile, File(description="the scan or photo")],
) -> DocumentOut:
    data = await file.read(rt.settings.kyc.max_document_bytes + 1)
    doc = await service.add_document(session=session, runtime=rt, actor=user, document_type=document_type, data=data)
    return DocumentOut.of(doc)


@router.delete("/kyc/documents/{document_id}", status_code=204, summary="Remove a document not yet submitted")
async def remove_document(document_id: uuid.UUID, user: CreatorUser, session: SessionDep, rt: RuntimeDep) -> Response:
    await service.remove_document(session=session, runtime=rt, actor=user, document_id=document_id)
    return Response(status_code=204)


@router.post("/kyc/submit", response_model=KycOut, summary="Send your documents for review")
async def submit(user: CreatorUser, session: SessionDep) -> KycOut:
    await service.submit(session=session, actor=user)
    return _kyc_out(await service.get_state(session=session, user_id=user.id))


@admin_router.get("", response_model=SubmissionPageOut, summary="KYC submissions, oldest first (admins)")
async def list_submissions(
    admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    status: Annotated[str | None, Query(description="draft, pending, approved, rejected or revoked")] = "pending",
) -> SubmissionPageOut:
    found = await service.list_submissions(session=session, status=status, limit=page.limit, cursor=page.cursor)
    return SubmissionPageOut(
        items=[SubmissionOut.of(row, name) for row, name in found.items], next_cursor=found.next_cursor
    )


@admin_router.get("/{submission_id}", response_model=SubmissionOut, summary="A KYC submission (admins)")
async def get_submission(submission_id: uuid.UUID, admin: AdminUser, session: SessionDep) -> SubmissionOut:
    row, docs = await service.get_submission(session=session, submission_id=submission_id)
    return SubmissionOut.of(row, documents=docs)


@admin_router.get(
    "/documents/{document_id}/file",
    summary="Read a document, decrypted (admins; every view is audited)",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}, "application/pdf": {}}}},
)
async def read_document(document_id: uuid.UUID, admin: AdminUser, rt: RuntimeDep, meta: RequestMetaDep) -> Response:
    doc, data = await service.read_document(
        runtime=rt, actor=admin, document_id=document_id, ip=meta.ip, user_agent=meta.user_agent
    )
    ext = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "application/pdf": "pdf"}[doc.content_type]
    return Response(
        data,
        media_type=doc.content_type,
        headers={
            "Cache-Control": "no-store, private",
            "Content-Disposition": f'attachment; filename="kyc-{doc.id}.{ext}"',
        },
    )


@admin_router.post("/{submission_id}/approve", response_model=SubmissionOut, summary="Approve a submission (admins)")
async def approve(
    submission_id: uuid.UUID, admin: AdminUser, session: SessionDep, meta: RequestMetaDep, body: ApproveIn | None = None
) -> SubmissionOut:
    row = await service.decide(
        session=session,
        actor=admin,
        submission_id=submission_id,
        approve=True,
        reason=body.reason if body else "",
        ip=meta.ip,
        user_agent=meta.user_agent,
    )
    return SubmissionOut.of(row)


@admin_router.post("/{submission_id}/reject", response_model=SubmissionOut, summary="Reject a submission (admins)")
async def reject(
    submission_id: uuid.UUID, body: RejectIn, admin: AdminUser, session: SessionDep, meta: RequestMetaDep
) -> SubmissionOut:
    row = await service.decide(
        session=session,
        actor=admin,
        submission_id=submission_id,
        approve=False,
        reason=body.reason,
        ip=meta.ip,
        user_agent=meta.user_agent,
    )
    return SubmissionOut.of(row)


@admin_router.post(
    "/users/{user_id}/revoke", response_model=SubmissionOut, summary="Withdraw a user's verification (admins)"
)
async def revoke(
    user_id: uuid.UUID, body: RejectIn, admin: AdminUser, session: SessionDep, meta: RequestMetaDep
) -> SubmissionOut:
    row = await service.revoke(
        session=session, actor=admin, user_id=user_id, reason=body.reason, ip=meta.ip, user_agent=meta.user_agent
    )
    return SubmissionOut.of(row)


@admin_router.post(
    "/reencrypt", response_model=ReencryptOut, summary="Re-encrypt documents under the active key (admins)"
)
async def reencrypt(
    admin: AdminUser, session: SessionDep, rt: RuntimeDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> ReencryptOut:
    result = await service.reencrypt_batch(session=session, runtime=rt, limit=limit)
    return ReencryptOut(
        reencrypted=result.reencrypted,
        failed=result.failed,
        remaining=result.remaining,
        active_key_id=result.active_key_id,
    )
