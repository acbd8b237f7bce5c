"""Helpers for KYC in tests: a document image, and the full upload → submit → approve path over the API."""

from __future__ import annotations

import io
import random
from typing import Any

from PIL import Image

API = "/api/v1"


def document_jpeg(seed: int = 1, size: tuple[int, int] = (420, 300)) -> bytes:
    """A JPEG that looks like a scan (noise, so it compresses badly and its bytes are distinctive)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, (240, 240, 230))
    pixels = image.load()
    assert pixels is not None
    for _ in range(4000):
        pixels[rng.randrange(size[0]), rng.randrange(size[1])] = (rng.randrange(256), 0, rng.randrange(256))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


async def upload(client: Any, user: Any, data: bytes, document_type: str = "passport", name: str = "id.jpg") -> Any:
    return await client.post(
        f"{API}/kyc/documents",
        data={"document_type": document_type},
        files={"file": (name, data, "image/jpeg")},
        headers=user.headers,
    )


async def approve_kyc(client: Any, admin: Any, user: Any) -> str:
    """Upload a passport scan as ``user``, submit it and approve it as ``admin``; the submission id."""
    r = await upload(client, user, document_jpeg())
    assert r.status_code == 201, r.text
    r = await client.post(f"{API}/kyc/submit", headers=user.headers)
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    submission_id = r.json()["submission_id"]
    r = await client.post(f"{API}/admin/kyc/{submission_id}/approve", json={}, headers=admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    return str(submission_id)


async def revoke_kyc(client: Any, admin: Any, user: Any) -> None:
    r = await client.post(
        f"{API}/admin/kyc/users/{user.id}/revoke", json={"reason": "documents expired"}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
