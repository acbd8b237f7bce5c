"""KYC through the API: encrypted uploads (the stored bytes are not the plaintext), the audited admin
view, approve/reject with the user told, the payout gate, a wrong key failing, key rotation (API and
CLI), and S3 storage."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from halobuzz.config import KycSettings, get_settings
from halobuzz.core.audit import AuditLog
from halobuzz.core.events import OutboxEvent
from halobuzz.core.storage import S3Storage
from halobuzz.kyc.crypto import DecryptionError, Keyring
from halobuzz.kyc.models import KycDocument
from tests.conftest import assert_error, client_for
from tests.core.conftest import SeaweedS3
from tests.core.conftest import seaweedfs as seaweedfs
from tests.kyc.support import API, approve_kyc, document_jpeg, upload

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def kyc(keys: str, active: str | None = None) -> KycSettings:
    return KycSettings(encryption_keys=keys, active_key_id=active)


async def stored_blob(app, document_id: str) -> bytes:
    async with app.runtime.db.session(write=False) as session:
        doc = await session.get(KycDocument, uuid.UUID(document_id))
    assert doc is not None
    path = app.runtime.settings.data_dir / "private" / doc.storage_key
    return Path(path).read_bytes()


async def events_of(app, kind: str) -> list[dict]:
    async with app.runtime.db.session(write=False) as session:
        rows = await session.scalars(select(OutboxEvent).where(OutboxEvent.type == "moderation.action"))
        return [r.data for r in rows if r.data.get("kind") == kind]


async def test_upload_review_approve_and_payout_gate(app, client, make_user):
    creator, admin, viewer = await make_user(roles=["creator"]), await make_user(roles=["admin"]), await make_user()
    scan = document_jpeg(seed=7)
    assert (await client.get(f"{API}/kyc", headers=creator.headers)).json()["status"] == "none"

    # Only creators upload; the type is checked by content; tiny images and junk are refused.
    assert_error(await upload(client, viewer, scan), 403, "insufficient_role")
    assert_error(await upload(client, creator, b"GIF89a" + b"\0" * 400), 415, "unsupported_document_type")
    assert_error(await upload(client, creator, document_jpeg(size=(60, 60))), 422, "document_too_small")
    assert_error(await upload(client, creator, scan, document_type="selfie"), 422, "invalid_document_type")
    assert_error(await upload(client, creator, b"%PDF-1.4 truncated"), 422, "invalid_document")

    selfie = await upload(client, creator, document_jpeg(seed=8), document_type="selfie_with_document")
    assert selfie.status_code == 201, selfie.text
    # A selfie alone proves nothing: an identity document is required to submit.
    assert_error(await client.post(f"{API}/kyc/submit", headers=creator.headers), 422, "identity_document_required")
    passport = await upload(client, creator, scan)
    assert passport.status_code == 201 and passport.json()["content_type"] == "image/jpeg"
    doc_id = passport.json()["id"]
    pdf = await upload(client, creator, PDF, document_type="proof_of_address", name="bill.pdf")
    assert pdf.status_code == 201 and pdf.json()["content_type"] == "application/pdf"

    # At rest: encrypted, not the plaintext nor any long piece of it, and not under the public media root.
    blob = await stored_blob(app, doc_id)
    assert blob != scan and scan[100:164] not in blob and blob.startswith(b"HBKYC1")
    assert not list((app.runtime.settings.data_dir / "media").rglob("*.bin"))
    async with app.runtime.db.session(write=False) as session:
        row = await session.get(KycDocument, uuid.UUID(doc_id))
    assert row is not None
    assert (await client.get(f"/media/{row.storage_key}")).status_code == 404
    assert (await client.get(f"/private/{row.storage_key}")).status_code == 404

    submitted = await client.post(f"{API}/kyc/submit", headers=creator.headers)
    assert submitted.status_code == 200 and submitted.json()["status"] == "pending"
    assert len(submitted.json()["documents"]) == 3
    submission_id = submitted.json()["submission_id"]
    assert_error(await upload(client, creator, scan), 409, "kyc_under_review")
    assert_error(await client.delete(f"{API}/kyc/documents/{doc_id}", headers=creator.headers), 409, "kyc_not_draft")

    # Admins only: the queue, the submission, and the decrypted file (audited before it is served).
    assert_error(await client.get(f"{API}/admin/kyc", headers=creator.headers), 403)
    queue = (await client.get(f"{API}/admin/kyc", headers=admin.headers)).json()
    assert [s["id"] for s in queue["items"]] == [submission_id] and queue["items"][0]["username"] == creator.username
    detail = (await client.get(f"{API}/admin/kyc/{submission_id}", headers=admin.headers)).json()
    assert {d["document_type"] for d in detail["documents"]} == {"passport", "selfie_with_document", "proof_of_address"}
    file_url = f"{API}/admin/kyc/documents/{doc_id}/file"
    assert_error(await client.get(file_url, headers=creator.headers), 403)
    shown = await client.get(file_url, headers={**admin.headers, "User-Agent": "review-desk"})
    assert shown.status_code == 200 and shown.content == scan
    assert shown.headers["content-type"] == "image/jpeg" and "no-store" in shown.headers["cache-control"]
    assert shown.headers["x-content-type-options"] == "nosniff"
    async with app.runtime.db.session(write=False) as session:
        views = list(await session.scalars(select(AuditLog).where(AuditLog.action == "kyc.document_viewed")))
    assert [(v.actor_id, v.target_id, v.user_agent) for v in views] == [(admin.id, doc_id, "review-desk")]

    # Payouts need approval: refused before, past the KYC gate after.
    body = {"coins": 2000, "currency": "NPR", "method": "esewa", "destination": "9800000000"}
    payout = {**creator.headers, "Idempotency-Key": uuid.uuid4().hex}
    assert_error(await client.post(f"{API}/payouts", json=body, headers=payout), 403, "kyc_required")
    assert_error(
        await client.post(f"{API}/admin/kyc/{submission_id}/reject", json={"reason": ""}, headers=admin.headers), 422
    )
    approved = await client.post(f"{API}/admin/kyc/{submission_id}/approve", json={}, headers=admin.headers)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert_error(
        await client.post(f"{API}/admin/kyc/{submission_id}/reject", json={"reason": "late"}, headers=admin.headers),
        409,
        "kyc_not_pending",
    )
    state = (await client.get(f"{API}/kyc", headers=creator.headers)).json()
    assert state["status"] == "approved" and state["decided_at"]
    r = await client.post(f"{API}/payouts", json=body, headers={**creator.headers, "Idempotency-Key": "p1"})
    assert r.json()["error"]["code"] == "insufficient_funds", r.text  # past the KYC gate; no earnings yet
    assert_error(await upload(client, creator, scan), 409, "kyc_already_approved")
    told = await events_of(app, "kyc")
    assert told == [
        {
            "user_id": str(creator.id),
            "kind": "kyc",
            "action": "kyc_approved",
            "submission_id": submission_id,
            "reason": None,
        }
    ]


async def test_reject_with_reason_then_resubmit(app, client, make_user):
    creator, admin = await make_user(roles=["creator"]), await make_user(roles=["admin"])
    first = await upload(client, creator, document_jpeg(seed=3))
    extra = await upload(client, creator, document_jpeg(seed=4), document_type="national_id")
    removed = await client.delete(f"{API}/kyc/documents/{extra.json()['id']}", headers=creator.headers)
    assert removed.status_code == 204
    assert_error(await client.delete(f"{API}/kyc/documents/{uuid.uuid4()}", headers=creator.headers), 404)
    sub = (await client.post(f"{API}/kyc/submit", headers=creator.headers)).json()
    assert [d["id"] for d in sub["documents"]] == [first.json()["id"]]
    rejected = await client.post(
        f"{API}/admin/kyc/{sub['submission_id']}/reject", json={"reason": "the photo is blurred"}, headers=admin.headers
    )
    assert rejected.status_code == 200 and rejected.json()["reason"] == "the photo is blurred"
    state = (await client.get(f"{API}/kyc", headers=creator.headers)).json()
    assert state["status"] == "rejected" and state["reason"] == "the photo is blurred"
    told = await events_of(app, "kyc")
    assert [(e["action"], e["reason"]) for e in told] == [("kyc_rejected", "the photo is blurred")]
    # A new submission starts with a fresh draft.
    await approve_kyc(client, admin, creator)
    assert (await client.get(f"{API}/kyc", headers=creator.headers)).json()["status"] == "approved"


def test_keyring_wrong_key_tampering_and_binding() -> None:
    ring = Keyring.parse(f"a:{key()}")
    doc = uuid.uuid4().bytes
    kid, blob = ring.encrypt(b"passport scan", aad=doc)
    assert kid == "a" and b"passport scan" not in blob
    assert ring.decrypt(blob, aad=doc) == b"passport scan"
    with pytest.raises(DecryptionError, match="wrong key"):
        Keyring.parse(f"a:{key()}").decrypt(blob, aad=doc)  # same id, another key
    with pytest.raises(DecryptionError, match="not configured"):
        Keyring.parse(f"b:{key()}").decrypt(blob, aad=doc)
    with pytest.raises(DecryptionError):
        ring.decrypt(blob, aad=uuid.uuid4().bytes)  # moved onto another document
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionError):
        ring.decrypt(tampered, aad=doc)
    with pytest.raises(ValueError, match="32 bytes"):
        Keyring.parse("a:" + base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="not one of"):
        Keyring.parse(f"a:{key()}", active="z")


async def test_a_wrong_key_fails_and_rotation_keeps_old_files_readable(app_factory, make_user, tmp_path):
    k1, k2 = key(), key()
    app = await app_factory(kyc=kyc(f"k1:{k1}"))
    creator, admin = await make_user(roles=["creator"]), await make_user(roles=["admin"])
    scan_one, scan_two = document_jpeg(seed=11), document_jpeg(seed=12)
    async with client_for(app) as client:
        one = (await upload(client, creator, scan_one)).json()["id"]
    data_dir = app.runtime.settings.data_dir

    # The same files under another key for "k1": reading fails with a clear error, never garbage.
    wrong = await app_factory(kyc=kyc(f"k1:{key()}"), data_dir=data_dir)
    async with client_for(wrong) as client:
        err = assert_error(await client.get(f"{API}/admin/kyc/documents/{one}/file", headers=admin.headers), 503)
        assert err["code"] == "kyc_decryption_failed" and "KYC_ENCRYPTION_KEYS" in err["message"]

    # Rotation: k2 becomes active; new uploads use it, old files still decrypt with k1.
    rotated = await app_factory(kyc=kyc(f"k1:{k1},k2:{k2}"), data_dir=data_dir)
    async with client_for(rotated) as client:
        two = (await upload(client, creator, scan_two, document_type="national_id")).json()["id"]
        assert (await client.get(f"{API}/admin/kyc/documents/{one}/file", headers=admin.headers)).content == scan_one
        async with rotated.runtime.db.session(write=False) as session:
            keys = {str(d.id): d.key_id for d in await session.scalars(select(KycDocument))}
        assert keys == {one: "k1", two: "k2"}
        old_blob = await stored_blob(rotated, one)
        assert_error(await client.post(f"{API}/admin/kyc/reencrypt", headers=creator.headers), 403)
        moved = await client.post(f"{API}/admin/kyc/reencrypt", headers=admin.headers)
        assert moved.json() == {"reencrypted": 1, "failed": 0, "remaining": 0, "active_key_id": "k2"}
        new_blob = await stored_blob(rotated, one)
        assert new_blob != old_blob and Keyring.key_id_of(new_blob) == "k2"

    # With k1 gone, everything still reads.
    only_new = await app_factory(kyc=kyc(f"k2:{k2}"), data_dir=data_dir)
    async with client_for(only_new) as client:
        for doc_id, scan in ((one, scan_one), (two, scan_two)):
            r = await client.get(f"{API}/admin/kyc/documents/{doc_id}/file", headers=admin.headers)
            assert r.status_code == 200 and r.content == scan

    # The command does the same for a third key, in batches, and reports what is left.
    k3 = key()
    env = {
        "DATABASE_URL": only_new.runtime.settings.resolved_database_url,
        "HALOBUZZ_DATA_DIR": str(data_dir),
        "HALOBUZZ_ENV": "development",
        "KYC_ENCRYPTION_KEYS": f"k2:{k2},k3:{k3}",
    }
    from halobuzz.cli import main

    def run() -> object:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(main, ["kyc-reencrypt", "--batch-size", "1"], env=env, catch_exceptions=False)
        finally:
            get_settings.cache_clear()

    result = await asyncio.to_thread(run)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "2 re-encrypted under key 'k3'" in result.output and "0 left" in result.output  # type: ignore[attr-defined]
    async with only_new.runtime.db.session(write=False) as session:
        assert {d.key_id for d in await session.scalars(select(KycDocument))} == {"k3"}


async def test_documents_are_stored_encrypted_in_s3(app_factory, make_user, seaweedfs: SeaweedS3):
    settings = seaweedfs.settings()
    app = await app_factory(s3=settings)
    creator, admin = await make_user(roles=["creator"]), await make_user(roles=["admin"])
    scan = document_jpeg(seed=21)
    async with client_for(app) as client:
        doc_id = (await upload(client, creator, scan)).json()["id"]
        async with app.runtime.db.session(write=False) as session:
            doc = await session.get(KycDocument, uuid.UUID(doc_id))
        assert doc is not None
        stored = seaweedfs.client().get_object(Bucket=settings["bucket"], Key=doc.storage_key)["Body"].read()
        assert stored != scan and scan[100:164] not in stored
        assert isinstance(app.runtime.storage, S3Storage)
        shown = await client.get(f"{API}/admin/kyc/documents/{doc_id}/file", headers=admin.headers)
        assert shown.status_code == 200 and shown.content == scan


async def test_production_without_keys_refuses_uploads(app_factory, make_user):
    app = await app_factory(env="production", ai_engine_secret="a" * 40)
    creator = await make_user(roles=["creator"])
    async with client_for(app) as client:
        err = assert_error(await upload(client, creator, document_jpeg()), 503, "kyc_not_configured")
        assert "KYC_ENCRYPTION_KEYS" in err["message"]
