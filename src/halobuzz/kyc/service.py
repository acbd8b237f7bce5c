"""KYC: creators upload identity documents (encrypted at rest), submit them, an admin approves or
rejects with a reason, and payouts require an approved submission.

Files go to private storage (``<data_dir>/private`` locally, never mounted; or the S3 bucket with
private objects) under keys that say nothing about their content. Admins read a document only
through ``read_document``, which writes an audit row first. Decisions emit ``moderation.action``
(``kind: "kyc"``) to the outbox, which is what tells the user.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from halobuzz.accounts.models import User
from halobuzz.config import Settings
from halobuzz.core import audit, events
from halobuzz.core.clock import utcnow
from halobuzz.core.db import after_commit, after_transaction
from halobuzz.core.errors import Conflict, DomainError, InvalidInput, NotFound, PayloadTooLarge, ServiceUnavailable
from halobuzz.core.ids import uuid7
from halobuzz.core.pagination import decode_cursor, encode_cursor
from halobuzz.core.runtime import Runtime
from halobuzz.core.storage import LocalStorage, ObjectNotFound, S3Storage, Storage
from halobuzz.kyc.crypto import DecryptionError, Keyring
from halobuzz.kyc.models import KycDocument, KycStatus, KycSubmission

log = structlog.get_logger(__name__)

DOCUMENT_TYPES = (
    "passport",
    "national_id",
    "citizenship_certificate",
    "driving_license",
    "voter_id",
    "selfie_with_document",
    "proof_of_address",
)
# A submission needs at least one of these (a selfie or a utility bill alone proves no identity).
IDENTITY_TYPES = frozenset({"passport", "national_id", "citizenship_certificate", "driving_license", "voter_id"})
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "PDF": "application/pdf"}


class UnsupportedDocumentType(DomainError):
    status_code = 415
    code = "unsupported_document_type"


# ----------------------------------------------------------------------------- plumbing


def keyring(runtime: Runtime) -> Keyring:
    """The process's KYC keys; 503 ``kyc_not_configured`` in production without KYC_ENCRYPTION_KEYS."""
    found = runtime.extras.get("kyc_keyring")
    if isinstance(found, Keyring):
        return found
    settings = runtime.settings
    ring = Keyring.from_settings(settings.kyc, data_dir=settings.data_dir, production=settings.env == "production")
    if ring is None:
        raise ServiceUnavailable(
            "identity verification is not configured on this server; the operator must set KYC_ENCRYPTION_KEYS",
            code="kyc_not_configured",
        )
    runtime.extras["kyc_keyring"] = ring
    return ring


def make_private_storage(settings: Settings) -> Storage:
    """Storage that is never served: a directory outside the public media root, or private S3 objects."""
    if settings.s3.endpoint:
        s3 = settings.s3.model_copy(update={"bucket": settings.kyc.s3_bucket or settings.s3.bucket, "public_url": None})
        return S3Storage(s3)
    return LocalStorage(settings.data_dir / "private", url_prefix="/nowhere")


def private_storage(runtime: Runtime) -> Storage:
    found = runtime.extras.get("private_storage")
    if found is None:
        found = make_private_storage(runtime.settings)
        runtime.extras["private_storage"] = found
    return found  # type: ignore[return-value]


def _storage_key(doc: KycDocument, key_id: str) -> str:
    # Opaque: ids and the key id only (the key id keeps rotated copies apart from the originals).
    safe_kid = hashlib.sha256(key_id.encode()).hexdigest()[:12]
    return f"kyc/{doc.user_id}/{doc.id}.{safe_kid}.bin"


def _aad(document_id: uuid.UUID) -> bytes:
    return b"halobuzz-kyc:" + document_id.bytes


def sniff_document(data: bytes) -> str:
    """The content type the file's bytes show (JPEG, PNG, WebP or PDF), checked to be well formed."""
    kind: str | None = None
    if data.startswith(b"\xff\xd8\xff"):
        kind = "JPEG"
    elif data.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = "PNG"
    elif len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "WEBP"
    elif data.startswith(b"%PDF-"):
        kind = "PDF"
    if kind is None:
        raise UnsupportedDocumentType(
            "identity documents must be JPEG, PNG, WebP or PDF files (checked by content, not by name)"
        )
    if kind == "PDF":
        if b"%%EOF" not in data[-2048:]:
            raise InvalidInput("the PDF file is truncated or damaged", code="invalid_document")
        return CONTENT_TYPES[kind]
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as image:
            width, height = image.size
            image.verify()
    except Exception as exc:  # Pillow raises assorted types on bad input
        raise InvalidInput(
            "the image could not be read; upload a clear photo or scan", code="invalid_document"
        ) from exc
    if width < 200 or height < 200:
        raise InvalidInput(
            f"the image is {width}x{height} pixels; documents must be at least 200x200 to be readable",
            code="document_too_small",
        )
    return CONTENT_TYPES[kind]


# ----------------------------------------------------------------------------- reading state


@dataclass(frozen=True, slots=True)
class KycState:
    status: str  # none | draft | pending | approved | rejected
    submission: KycSubmission | None
    documents: list[KycDocument]


async def is_approved(*, session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Whether the user holds an approved KYC submission (what payouts require)."""
    found = await session.scalar(
        select(KycSubmission.id)
        .where(KycSubmission.user_id == user_id, KycSubmission.status == KycStatus.APPROVED.value)
        .limit(1)
    )
    return found is not None


async def get_state(*, session: AsyncSession, user_id: uuid.UUID) -> KycState:
    """The user's latest submission (approved wins over later rejected ones) and its documents."""
    approved = await session.scalar(
        select(KycSubmission)
        .where(KycSubmission.user_id == user_id, KycSubmission.status == KycStatus.APPROVED.value)
        .order_by(KycSubmission.created_at.desc())
        .limit(1)
    )
    latest = approved or await session.scalar(
        select(KycSubmission)
        .where(KycSubmission.user_id == user_id)
        .order_by(KycSubmission.created_at.desc(), KycSubmission.id.desc())
        .limit(1)
    )
    if latest is None:
        return KycState("none", None, [])
    return KycState(latest.status, latest, await _documents(session, latest.id))


async def _documents(session: AsyncSession, submission_id: uuid.UUID) -> list[KycDocument]:
    rows = await session.scalars(
        select(KycDocument).where(KycDocument.submission_id == submission_id).order_by(KycDocument.created_at)
    )
    return list(rows)


async def _open_submission(session: AsyncSession, user_id: uuid.UUID, *, create: bool) -> KycSubmission | None:
    """The user's draft or pending submission, locked; a new draft when ``create`` and there is none."""
    query = select(KycSubmission).where(KycSubmission.open_key == str(user_id)).with_for_update()
    row = await session.scalar(query)
    if row is not None or not create:
        return row
    if await is_approved(session=session, user_id=user_id):
        raise Conflict("your identity is already verified", code="kyc_already_approved")
    row = KycSubmission(id=uuid7(), user_id=user_id, status=KycStatus.DRAFT.value, open_key=str(user_id))
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:  # a concurrent upload created it
        row = await session.scalar(query.execution_options(populate_existing=True))
        if row is None:
            raise Conflict("your verification changed at the same moment; try again", code="kyc_race") from None
    return row


# ----------------------------------------------------------------------------- the user's side


async def add_document(
    *, session: AsyncSession, runtime: Runtime, actor: User, document_type: str, data: bytes
) -> KycDocument:
    """Encrypt and store an identity document in the user's draft submission (created on first upload)."""
    limits = runtime.settings.kyc
    if document_type not in DOCUMENT_TYPES:
        raise InvalidInput(f"document_type must be one of {', '.join(DOCUMENT_TYPES)}", code="invalid_document_type")
    if len(data) > limits.max_document_bytes:
        raise PayloadTooLarge(f"a document may be at most {limits.max_document_bytes} bytes", code="document_too_large")
    if not data:
        raise InvalidInput("the uploaded file is empty", code="invalid_document")
    content_type = await asyncio.to_thread(sniff_document, data)
    ring = keyring(runtime)
    submission = await _open_submission(session, actor.id, create=True)
    assert submission is not None
    if submission.status == KycStatus.PENDING:
        raise Conflict("your documents are being reviewed; wait for the decision", code="kyc_under_review")
    count = await session.scalar(select(func.count()).where(KycDocument.submission_id == submission.id))
    if int(count or 0) >= limits.max_documents:
        raise Conflict(f"a submission holds at most {limits.max_documents} documents", code="too_many_documents")
    doc = KycDocument(
        id=uuid7(),
        submission_id=submission.id,
        user_id=actor.id,
        document_type=document_type,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_key="",
        key_id=ring.active,
    )
    key_id, blob = ring.encrypt(data, aad=_aad(doc.id))
    doc.key_id, doc.storage_key = key_id, _storage_key(doc, key_id)
    storage = private_storage(runtime)
    await storage.put(doc.storage_key, blob, "application/octet-stream")
    _drop_unless_committed(session, storage, doc.storage_key)
    session.add(doc)
    await session.flush()
    await audit.record(
        session,
        action="kyc.document_uploaded",
        actor_id=actor.id,
        target_type="kyc_document",
        target_id=doc.id,
        details={"document_type": document_type, "size": len(data), "key_id": key_id},
    )
    return doc


def _drop_unless_committed(session: AsyncSession, storage: Storage, key: str) -> None:
    state = {"committed": False}

    def committed() -> None:
        state["committed"] = True

    async def drop() -> None:
        if not state["committed"]:
            await storage.delete(key)

    after_commit(session, committed)
    after_transaction(session, drop)


def _delete_after_commit(session: AsyncSession, storage: Storage, key: str) -> None:
    after_commit(session, lambda: storage.delete(key))


async def remove_document(*, session: AsyncSession, runtime: Runtime, actor: User, document_id: uuid.UUID) -> None:
    """Take a document out of the user's draft; its file is deleted after commit."""
    submission = await _open_submission(session, actor.id, create=False)
    doc = await session.get(KycDocument, document_id)
    if doc is None or doc.user_id != actor.id:
        raise NotFound("no such document of yours", code="document_not_found")
    if submission is None or doc.submission_id != submission.id or submission.status != KycStatus.DRAFT:
        raise Conflict("only documents of a submission not yet sent can be removed", code="kyc_not_draft")
    key = doc.storage_key
    await session.delete(doc)
    await session.flush()
    _delete_after_commit(session, private_storage(runtime), key)


async def submit(*, session: AsyncSession, actor: User) -> KycSubmission:
    """Send the draft for review."""
    submission = await _open_submission(session, actor.id, create=False)
    if submission is None:
        if await is_approved(session=session, user_id=actor.id):
            raise Conflict("your identity is already verified", code="kyc_already_approved")
        raise Conflict("upload your documents first", code="no_documents")
    if submission.status == KycStatus.PENDING:
        raise Conflict("your documents are already being reviewed", code="kyc_under_review")
    types = {d.document_type for d in await _documents(session, submission.id)}
    if not types & IDENTITY_TYPES:
        raise InvalidInput(
            "add an identity document (passport, national ID, citizenship certificate, driving licence or voter ID)",
            code="identity_document_required",
        )
    submission.status, submission.submitted_at = KycStatus.PENDING.value, utcnow()
    await session.flush()
    await audit.record(
        session, action="kyc.submitted", actor_id=actor.id, target_type="kyc_submission", target_id=submission.id
    )
    return submission


# ----------------------------------------------------------------------------- the admin's side


@dataclass(frozen=True, slots=True)
class SubmissionPage:
    items: list[tuple[KycSubmission, str]]
    next_cursor: str | None


async def list_submissions(
    *, session: AsyncSession, status: str | None, limit: int, cursor: str | None
) -> SubmissionPage:
    """Submissions (with the username), oldest first: the review queue when ``status`` is pending."""
    if status is not None and status not in {s.value for s in KycStatus}:
        raise InvalidInput("status must be draft, pending, approved, rejected or revoked", code="invalid_status")
    query = select(KycSubmission, User.username).join(User, User.id == KycSubmission.user_id)
    if status is not None:
        query = query.where(KycSubmission.status == status)
    if cursor:
        at, sid = decode_cursor(cursor, datetime, uuid.UUID)
        query = query.where(
            (KycSubmission.created_at > at) | ((KycSubmission.created_at == at) & (KycSubmission.id > sid))
        )
    rows = list(
        (await session.execute(query.order_by(KycSubmission.created_at, KycSubmission.id).limit(limit + 1))).all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1][0].created_at, rows[-1][0].id) if more else None
    return SubmissionPage([(r[0], r[1]) for r in rows], next_cursor)


async def get_submission(*, session: AsyncSession, submission_id: uuid.UUID) -> tuple[KycSubmission, list[KycDocument]]:
    submission = await session.get(KycSubmission, submission_id)
    if submission is None:
        raise NotFound("no such KYC submission", code="submission_not_found")
    return submission, await _documents(session, submission.id)


async def read_document(
    *, runtime: Runtime, actor: User, document_id: uuid.UUID, ip: str | None, user_agent: str | None
) -> tuple[KycDocument, bytes]:
    """Decrypt a document for an admin. The view is audited (in its own committed transaction) before
    any byte is returned; a file that does not decrypt or does not match its hash is an error."""
    async with runtime.db.session(write=False) as read:
        doc = await read.get(KycDocument, document_id)
    if doc is None:
        raise NotFound("no such document", code="document_not_found")
    async with runtime.db.session() as write:
        await audit.record(
            write,
            action="kyc.document_viewed",
            actor_id=actor.id,
            target_type="kyc_document",
            target_id=doc.id,
            ip=ip,
            user_agent=user_agent,
            details={"user_id": str(doc.user_id), "document_type": doc.document_type},
        )
    try:
        blob = await private_storage(runtime).get(doc.storage_key)
    except ObjectNotFound:
        raise NotFound("the document's file is missing from storage", code="document_file_missing") from None
    plain = _decrypt(keyring(runtime), doc, blob)
    return doc, plain


def _decrypt(ring: Keyring, doc: KycDocument, blob: bytes) -> bytes:
    try:
        plain = ring.decrypt(blob, aad=_aad(doc.id))
    except DecryptionError as exc:
        log.error("kyc_document_undecryptable", document_id=str(doc.id), key_id=doc.key_id, error=str(exc))
        raise ServiceUnavailable(
            f"the document cannot be decrypted: {exc}; check KYC_ENCRYPTION_KEYS", code="kyc_decryption_failed"
        ) from None
    if hashlib.sha256(plain).hexdigest() != doc.sha256:
        raise ServiceUnavailable("the decrypted document does not match its checksum", code="kyc_decryption_failed")
    return plain


async def decide(
    *,
    session: AsyncSession,
    actor: User,
    submission_id: uuid.UUID,
    approve: bool,
    reason: str,
    ip: str | None,
    user_agent: str | None,
) -> KycSubmission:
    """Approve or reject a pending submission (admins) exactly once; the user is told through the outbox."""
    submission = await session.scalar(select(KycSubmission).where(KycSubmission.id == submission_id).with_for_update())
    if submission is None:
        raise NotFound("no such KYC submission", code="submission_not_found")
    if submission.status != KycStatus.PENDING:
        raise Conflict(f"this submission is {submission.status}, not waiting for review", code="kyc_not_pending")
    if not approve and not reason.strip():
        raise InvalidInput("say why the documents are rejected (the user is told)", code="reason_required")
    outcome = KycStatus.APPROVED if approve else KycStatus.REJECTED
    submission.status, submission.open_key = outcome.value, None
    submission.reviewed_by_id, submission.reason, submission.decided_at = actor.id, reason.strip() or None, utcnow()
    await session.flush()
    await audit.record(
        session,
        action=f"kyc.{outcome.value}",
        actor_id=actor.id,
        target_type="kyc_submission",
        target_id=submission.id,
        ip=ip,
        user_agent=user_agent,
        details={"user_id": str(submission.user_id), "reason": submission.reason},
    )
    events.emit(
        session,
        "moderation.action",
        {
            "user_id": str(submission.user_id),
            "kind": "kyc",
            "action": f"kyc_{outcome.value}",
            "submission_id": str(submission.id),
            "reason": submission.reason,
        },
        actor_id=actor.id,
    )
    return submission


async def revoke(
    *, session: AsyncSession, actor: User, user_id: uuid.UUID, reason: str, ip: str | None, user_agent: str | None
) -> KycSubmission:
    """Withdraw a user's approved verification (admins): payouts stop until a new submission is approved."""
    submission = await session.scalar(
        select(KycSubmission)
        .where(KycSubmission.user_id == user_id, KycSubmission.status == KycStatus.APPROVED.value)
        .order_by(KycSubmission.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    if submission is None:
        raise NotFound("this user has no approved verification", code="kyc_not_approved")
    submission.status, submission.reviewed_by_id = KycStatus.REVOKED.value, actor.id
    submission.reason, submission.decided_at = reason.strip(), utcnow()
    await session.flush()
    await audit.record(
        session,
        action="kyc.revoked",
        actor_id=actor.id,
        target_type="kyc_submission",
        target_id=submission.id,
        ip=ip,
        user_agent=user_agent,
        details={"user_id": str(user_id), "reason": submission.reason},
    )
    events.emit(
        session,
        "moderation.action",
        {
            "user_id": str(user_id),
            "kind": "kyc",
            "action": "kyc_revoked",
            "submission_id": str(submission.id),
            "reason": submission.reason,
        },
        actor_id=actor.id,
    )
    return submission


# ----------------------------------------------------------------------------- key rotation


@dataclass(frozen=True, slots=True)
class ReencryptResult:
    reencrypted: int
    failed: int
    remaining: int
    active_key_id: str


async def reencrypt_batch(*, session: AsyncSession, runtime: Runtime, limit: int = 100) -> ReencryptResult:
    """Move up to ``limit`` documents sealed with an older key to the active key, in ``session``.

    Each document's new blob is written under a new storage key and the row switched to it; the
    old blob is deleted only after commit. A crash at any point leaves every row pointing at a blob
    that decrypts with the key it names. Rows are locked (``SKIP LOCKED`` on PostgreSQL), so two
    runs never re-encrypt one document at once.
    """
    ring = keyring(runtime)
    storage = private_storage(runtime)
    done = failed = 0
    query = select(KycDocument).where(KycDocument.key_id != ring.active).order_by(KycDocument.id).limit(limit)
    if not runtime.db.is_sqlite:
        query = query.with_for_update(skip_locked=True)
    for doc in list(await session.scalars(query)):
        try:
            plain = _decrypt(ring, doc, await storage.get(doc.storage_key))
        except (ObjectNotFound, ServiceUnavailable) as exc:
            log.error("kyc_reencrypt_failed", document_id=str(doc.id), key_id=doc.key_id, error=str(exc))
            failed += 1
            continue
        old_key = doc.storage_key
        key_id, sealed = ring.encrypt(plain, aad=_aad(doc.id))
        new_key = _storage_key(doc, key_id)
        await storage.put(new_key, sealed, "application/octet-stream")
        _drop_unless_committed(session, storage, new_key)
        doc.key_id, doc.storage_key = key_id, new_key
        if old_key != new_key:
            _delete_after_commit(session, storage, old_key)
        done += 1
    await session.flush()
    if done or failed:
        await audit.record(
            session,
            action="kyc.reencrypted",
            actor_id=None,
            target_type="kyc_document",
            details={"documents": done, "failed": failed, "active_key_id": ring.active},
        )
    remaining = int(await session.scalar(select(func.count()).where(KycDocument.key_id != ring.active)) or 0)
    return ReencryptResult(done, failed, remaining, ring.active)


async def reencrypt_all(
    *, runtime: Runtime, batch_size: int = 100, progress: Callable[[ReencryptResult], Any] | None = None
) -> ReencryptResult:
    """Re-encrypt every document under the active key, one batch per transaction (the CLI)."""
    total = failed = 0
    while True:
        async with runtime.db.session() as session:
            result = await reencrypt_batch(session=session, runtime=runtime, limit=batch_size)
        total, failed = total + result.reencrypted, failed + result.failed
        if progress is not None:
            progress(result)
        # Stop when nothing moved: either all done, or only undecryptable documents are left.
        if result.reencrypted == 0 or result.remaining == 0:
            return ReencryptResult(total, failed, result.remaining, result.active_key_id)


# ----------------------------------------------------------------------------- account deletion


async def erase_documents(*, session: AsyncSession, runtime: Runtime, user_id: uuid.UUID) -> int:
    """Delete a user's documents (rows now, files after commit); the decisions stay as records."""
    docs = list(await session.scalars(select(KycDocument).where(KycDocument.user_id == user_id)))
    storage = private_storage(runtime)
    for doc in docs:
        key = doc.storage_key
        await session.delete(doc)
        _delete_after_commit(session, storage, key)
    for submission in await session.scalars(select(KycSubmission).where(KycSubmission.open_key == str(user_id))):
        submission.open_key, submission.status = None, KycStatus.REJECTED.value
        submission.reason, submission.decided_at = "account deleted", utcnow()
    await session.flush()
    return len(docs)
