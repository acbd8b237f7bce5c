"""Admin panel pages for identity verification (the review queue, a submission with its documents,
approve or reject with a reason) and the image blocklist (perceptual hashes: upload an image or
give its hashes, unblock)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from halobuzz.web.admin import _finish, _more, _posted, _staff
from halobuzz.web.pages import Page, items, page_route, text

router = APIRouter(prefix="/admin", include_in_schema=False)
KYC_STATUSES = ("pending", "approved", "rejected", "revoked", "draft")


# --- identity verification ----------------------------------------------------------------------


async def _kyc_list_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    q = page.request.query_params
    wanted = str(q.get("status")) if q.get("status") in KYC_STATUSES else "pending"
    found = await page.api.get("/admin/kyc", status=wanted, limit=50, cursor=q.get("cursor"))
    return page.render(
        "admin_kyc.html",
        status=status if found.ok else found.status,
        submissions=items(found),
        wanted=wanted,
        statuses=KYC_STATUSES,
        more=_more(page, found, status=wanted),
        error=error or (None if found.ok else found.error),
    )


@router.get("/kyc", response_class=HTMLResponse)
@page_route
async def kyc_queue(request: Request) -> Response:
    return await _kyc_list_view(await _staff(request, admin_only=True))


async def _submission_view(
    page: Page, submission_id: str, *, error: str | None = None, status: int = 200, typed: str = ""
) -> Response:
    sub = page.must(await page.api.get(f"/admin/kyc/{submission_id}"))
    owner = await page.api.get(f"/users/{sub['user_id']}")
    return page.render(
        "admin_kyc_submission.html",
        status=status,
        sub=sub,
        owner=owner.data if owner.ok else None,
        typed=typed,
        error=error,
    )


@router.get("/kyc/{submission_id}", response_class=HTMLResponse)
@page_route
async def kyc_submission(request: Request, submission_id: str) -> Response:
    page = await _staff(request, admin_only=True)
    return await _submission_view(page, page.id_of(submission_id))


@router.get("/kyc/documents/{document_id}/file")
@page_route
async def kyc_document(request: Request, document_id: str) -> Response:
    """The decrypted document from the API (which audits the view), as an attachment."""
    page = await _staff(request, admin_only=True)
    did = page.id_of(document_id)
    found = await page.api.get(f"/admin/kyc/documents/{did}/file")
    if not found.ok:
        raise page.fail(found)
    response = Response(found.body, media_type=found.headers.get("content-type", "application/octet-stream"))
    if "content-disposition" in found.headers:
        response.headers["content-disposition"] = found.headers["content-disposition"]
    page.finish(response)
    response.headers["cache-control"] = "no-store, private"
    return response


@router.post("/kyc/{submission_id}/{decision}")
@page_route
async def kyc_decide(request: Request, submission_id: str, decision: str) -> Response:
    page, form = await _posted(request, admin_only=True)
    sid = page.id_of(submission_id)
    if decision not in ("approve", "reject"):
        raise page.not_found()
    reason = text(form, "reason")
    result = await page.api.post(f"/admin/kyc/{sid}/{decision}", {"reason": reason})
    if not result.ok:
        return await _submission_view(page, sid, error=result.error, status=result.status, typed=reason)
    return page.redirect(
        "/admin/kyc?" + urlencode({"notice": "kyc_approved" if decision == "approve" else "kyc_rejected"})
    )


# --- image blocklist -----------------------------------------------------------------------------------


async def _images_view(
    page: Page, *, error: str | None = None, status: int = 200, values: dict[str, str] | None = None
) -> Response:
    found = await page.api.get(
        "/admin/moderation/image-blocklist", limit=50, cursor=page.request.query_params.get("cursor")
    )
    return page.render(
        "admin_images.html",
        status=status if found.ok else found.status,
        blocks=items(found),
        more=_more(page, found),
        values=values or {},
        error=error or (None if found.ok else found.error),
    )


@router.get("/images", response_class=HTMLResponse)
@page_route
async def images(request: Request) -> Response:
    return await _images_view(await _staff(request))


@router.post("/images/upload")
@page_route
async def image_upload(request: Request) -> Response:
    page, form = await _posted(request)
    upload = form.get("file")
    reason = text(form, "reason")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _images_view(page, error=page.t("account.choose_image"), status=422, values={"reason": reason})
    files: dict[str, Any] = {
        "reason": (None, reason),
        "file": (upload.filename, await upload.read(), upload.content_type or "application/octet-stream"),
    }
    result = await page.api.call("POST", "/admin/moderation/image-blocklist/upload", files=files)
    return await _finish(page, result, _images_view, "/admin/images", "image_blocked", values={"reason": reason})


@router.post("/images/hashes")
@page_route
async def image_hashes(request: Request) -> Response:
    page, form = await _posted(request)
    values = {k: text(form, k) for k in ("phash", "dhash", "reason")}
    result = await page.api.post("/admin/moderation/image-blocklist", values)
    return await _finish(page, result, _images_view, "/admin/images", "image_blocked", values=values)


@router.post("/images/{block_id}/remove")
@page_route
async def image_remove(request: Request, block_id: str) -> Response:
    page, _ = await _posted(request)
    bid = page.id_of(block_id)
    result = await page.api.call("DELETE", f"/admin/moderation/image-blocklist/{bid}")
    return await _finish(page, result, _images_view, "/admin/images", "image_unblocked")
