"""Fast path for ``POST /api/v1/streams/{stream_id}/gifts``, the hottest write.

During a big stream gifts arrive by the hundred per second, and FastAPI's routing, dependency
solving and validation cost more of the server's core than the gift itself, which is posted in
a shared batch (``economy.batch``). This handler takes the plain case — a canonical stream id, a
bearer token whose session the session cache (``core.sessioncache``) already knows to be valid,
an ``Idempotency-Key`` of 1 to 255 characters, a JSON object with exactly a canonical ``gift_id``
and optionally an integer ``quantity`` within the schema's bounds — and hands it to the batcher
as the route does. Anything else (another shape, a token not yet checked, a malformed header)
goes to the FastAPI route (``economy.api.send_gift``), which checks it fully, answers input
errors, and remembers the session for the next request. Service errors (no funds, stream not
live, …) are answered here in the error shape of ``core.errors``; tests compare both paths'
bodies.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.types import Scope

from halobuzz.core.errors import DomainError
from halobuzz.core.fastpath import FastAnswer, error_answer, header
from halobuzz.core.runtime import Runtime
from halobuzz.economy import batch
from halobuzz.economy.schemas import MAX_GIFT_QUANTITY

TEMPLATE = "/api/v1/streams/{stream_id}/gifts"


def _canonical_uuid(value: Any) -> uuid.UUID | None:
    """``value`` as a UUID when it is one in the canonical lower-case hyphenated form."""
    if not isinstance(value, str) or len(value) != 36:
        return None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    return parsed if str(parsed) == value else None


def make_handler(runtime: Runtime) -> Any:
    from halobuzz.economy.api import receipt_out

    sessions = runtime.sessions

    async def handler(scope: Scope, params: dict[str, str], body: bytes) -> FastAnswer | None:
        stream_id = _canonical_uuid(params["stream_id"])
        authorization = header(scope, b"authorization")
        key = header(scope, b"idempotency-key")
        content_type = header(scope, b"content-type")
        if stream_id is None or authorization is None or key is None or not 1 <= len(key) <= 255:
            return None
        if content_type is None or content_type.split(";")[0].strip().lower() != "application/json":
            return None
        scheme, _, token = authorization.partition(" ")
        claims = sessions.claims(token.strip()) if scheme.lower() == "bearer" else None
        if claims is None or not sessions.session_valid(claims):
            return None
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict) or not {"gift_id"} <= data.keys() <= {"gift_id", "quantity"}:
            return None
        gift_id = _canonical_uuid(data["gift_id"])
        quantity = data.get("quantity", 1)
        if gift_id is None or type(quantity) is not int or not 1 <= quantity <= MAX_GIFT_QUANTITY:
            return None
        scope.setdefault("state", {})["user_id"] = str(claims.user_id)
        try:
            receipt = await batch.batcher_of(runtime).send(
                batch.GiftRequest(
                    actor_id=claims.user_id,
                    stream_id=stream_id,
                    gift_id=gift_id,
                    quantity=quantity,
                    idempotency_key=key,
                )
            )
        except DomainError as exc:
            return error_answer(scope, exc)
        return FastAnswer(200, receipt_out(receipt).model_dump_json().encode())

    return handler


def register(runtime: Runtime) -> None:
    runtime.fast_paths.add_post(TEMPLATE, make_handler(runtime))
