"""Trust and privacy pages of a signed-in user: identity verification for creators (documents,
status), blocked chat terms of a creator's channel, decisions against the user with their
appeals, downloading one's data and deleting the account."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from halobuzz.kyc.service import DOCUMENT_TYPES
from halobuzz.web.account import _account_view
from halobuzz.web.client import ApiResult
from halobuzz.web.pages import Page, items, page_route, text

router = APIRouter(include_in_schema=False)


async def _upload(form: dict[str, Any]) -> tuple[str, bytes, str] | None:
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    return upload.filename, await upload.read(), upload.content_type or "application/octet-stream"


# --- identity verification (KYC) --------------------------------------------------------------------


async def _kyc_view(page: Page, *, error: str | None = None, status: int = 200) -> Response:
    page.need_user()
    state = page.must(await page.api.get("/kyc"))
    return page.render(
        "studio_kyc.html",
        status=status,
        kyc=state,
        document_types=DOCUMENT_TYPES,
        creator=page.has_role("creator", "admin"),
        max_mb=page.runtime.settings.kyc.max_document_bytes // (1024 * 1024),
        error=error,
    )


async def _kyc_done(page: Page, result: ApiResult, notice: str) -> Response:
    if not result.ok:
        return await _kyc_view(page, error=result.error, status=result.status)
    return page.redirect(f"/studio/kyc?notice={notice}")


@router.get("/studio/kyc", response_class=HTMLResponse)
@page_route
async def kyc(request: Request) -> Response:
    page = await Page.open(request)
    return await _kyc_view(page)


@router.post("/studio/kyc/documents")
@page_route
async def kyc_upload(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    upload = await _upload(form)
    if upload is None:
        return await _kyc_view(page, error=page.t("kyc.choose_file"), status=422)
    result = await page.api.call(
        "POST", "/kyc/documents", files={"document_type": (None, text(form, "document_type")), "file": upload}
    )
    return await _kyc_done(page, result, "document_uploaded")


@router.post("/studio/kyc/documents/{document_id}/remove")
@page_route
async def kyc_remove(request: Request, document_id: str) -> Response:
    page = await Page.open(request)
    await page.signed_form()
    did = page.id_of(document_id)
    return await _kyc_done(page, await page.api.call("DELETE", f"/kyc/documents/{did}"), "document_removed")


@router.post("/studio/kyc/submit")
@page_route
async def kyc_submit(request: Request) -> Response:
    page = await Page.open(request)
    await page.signed_form()
    return await _kyc_done(page, await page.api.post("/kyc/submit"), "kyc_submitted")


# --- blocked chat terms ------------------------------------------------------------------------------


async def _terms_view(page: Page, *, error: str | None = None, status: int = 200, typed: str = "") -> Response:
    page.need_user()
    if not page.has_role("creator", "admin"):
        return page.render("studio_apply.html", status=403 if status == 200 else status, error=error)
    found = await page.api.get("/users/me/blocked-terms")
    return page.render(
        "studio_terms.html",
        status=status,
        terms=items(found),
        typed=typed,
        error=error or (None if found.ok else found.error),
    )


@router.get("/studio/blocked-terms", response_class=HTMLResponse)
@page_route
async def blocked_terms(request: Request) -> Response:
    page = await Page.open(request)
    return await _terms_view(page)


@router.post("/studio/blocked-terms")
@page_route
async def add_terms(request: Request) -> Response:
    """One term per line (or separated by commas)."""
    page = await Page.open(request)
    form, _ = await page.signed_form()
    typed = text(form, "terms")
    terms = [t.strip() for t in re.split(r"[,\n]", typed) if t.strip()]
    result = await page.api.post("/users/me/blocked-terms", {"terms": terms})
    if not result.ok:
        return await _terms_view(page, error=result.error, status=result.status, typed=typed)
    return page.redirect("/studio/blocked-terms?notice=terms_added")


@router.post("/studio/blocked-terms/remove")
@page_route
async def remove_term(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    term = text(form, "term")
    if not term:
        return await _terms_view(page, error=page.t("terms.choose"), status=422)
    # A term is one path segment (the API's route): one with a "/" in it cannot be named there.
    result = await page.api.call("DELETE", "/users/me/blocked-terms/" + term)
    if not result.ok:
        return await _terms_view(page, error=result.error, status=result.status)
    return page.redirect("/studio/blocked-terms?notice=term_removed")


# --- decisions against me and appeals -------------------------------------------------------------------


async def _appeals_view(
    page: Page, *, error: str | None = None, status: int = 200, typed: dict[str, str] | None = None
) -> Response:
    page.need_user()
    found = await page.api.get("/moderation/me/actions")
    return page.render(
        "appeals.html",
        status=status,
        actions=items(found),
        typed=typed or {},
        error=error or (None if found.ok else found.error),
    )


@router.get("/account/appeals", response_class=HTMLResponse)
@page_route
async def appeals(request: Request) -> Response:
    page = await Page.open(request)
    return await _appeals_view(page)


@router.post("/account/appeals/{action_id}")
@page_route
async def appeal(request: Request, action_id: str) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    aid = page.id_of(action_id)
    said = text(form, "text")
    result = await page.api.post(f"/moderation/actions/{aid}/appeal", {"text": said})
    if not result.ok:
        return await _appeals_view(page, error=result.error, status=result.status, typed={aid: said})
    return page.redirect("/account/appeals?notice=appeal_sent")


# --- privacy: my data, deleting the account ----------------------------------------------------------------


@router.post("/account/export")
@page_route
async def export(request: Request) -> Response:
    """The API's JSON file, handed over as a download."""
    page = await Page.open(request)
    await page.signed_form()
    result = await page.api.get("/users/me/export")
    if not result.ok:
        raise page.fail(result)
    response = Response(result.body, media_type="application/json")
    response.headers["content-disposition"] = result.headers.get(
        "content-disposition", 'attachment; filename="halobuzz.json"'
    )
    return page.finish(response)


@router.post("/account/delete")
@page_route
async def delete_account(request: Request) -> Response:
    page = await Page.open(request)
    form, _ = await page.signed_form()
    body = {"password": str(form.get("password") or ""), "confirm": text(form, "confirm")}
    result = await page.api.post("/users/me/delete", body)
    if not result.ok:
        return await _account_view(page, error=result.error, status=result.status)
    # Every sign-in of the account has ended: the cookie goes with it.
    page.me, page.ended = None, True
    return page.redirect("/?notice=account_deleted")
