"""Routes: download your data (GET /users/me/export) and delete your account (POST /users/me/delete)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from halobuzz.accounts import service as accounts_service
from halobuzz.accounts.deps import CurrentUser
from halobuzz.core.deps import RequestMetaDep, RuntimeDep, SessionDep
from halobuzz.core.errors import InvalidInput
from halobuzz.privacy import service

router = APIRouter(prefix="/users/me", tags=["privacy"])
CONFIRMATION = "delete my account"


class DeleteIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024)
    confirm: str = Field(description=f"the words {CONFIRMATION!r}")


@router.get(
    "/export",
    summary="Download everything stored about you (JSON)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
async def export(user: CurrentUser, session: SessionDep, rt: RuntimeDep, meta: RequestMetaDep) -> Response:
    data = await service.export_user_data(session=session, runtime=rt, user=user)
    await service.record_export(runtime=rt, user=user, ip=meta.ip, user_agent=meta.user_agent)
    return Response(
        orjson.dumps(data, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="halobuzz-{user.username}.json"',
            "Cache-Control": "no-store, private",
        },
    )


@router.post("/delete", summary="Delete your account: personal data erased, sign-ins ended")
async def delete_account(
    body: DeleteIn, user: CurrentUser, session: SessionDep, rt: RuntimeDep, meta: RequestMetaDep
) -> dict[str, Any]:
    if body.confirm.strip().lower() != CONFIRMATION:
        raise InvalidInput(f"to delete your account send confirm: {CONFIRMATION!r}", code="confirmation_required")
    await accounts_service._check_own_password(rt, actor=user, password=body.password, ip=meta.ip)
    counts = await service.delete_account(
        session=session, runtime=rt, user=user, ip=meta.ip, user_agent=meta.user_agent
    )
    return {"deleted": True, **counts}
