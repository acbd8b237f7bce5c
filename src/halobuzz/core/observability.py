"""Structured logs (structlog, JSON), Prometheus metrics, and the request-context middleware."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from prometheus_client import Counter, Gauge, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from halobuzz.core.errors import error_body

# Keys whose values never reach a log line.
_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|cookie|stream_key|otp|code$", re.I)

HTTP_REQUESTS = Counter("halobuzz_http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "halobuzz_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DB_POOL_CHECKED_OUT = Gauge("halobuzz_db_pool_checked_out", "Database connections in use")
DB_POOL_SIZE = Gauge("halobuzz_db_pool_size", "Database connection pool size")
BUSINESS_EVENTS = Counter("halobuzz_business_events_total", "Business events", ["event"])


def count_event(name: str) -> None:
    """Count a business event (registration, login, stream_start …) for /metrics."""
    BUSINESS_EVENTS.labels(event=name).inc()


def _redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key != "event" and _SECRET_KEYS.search(key):
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """JSON lines to stdout (or a readable console format), with secrets redacted.

    Records of the standard library's loggers (uvicorn, SQLAlchemy, …) are rendered the same way.
    """
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer,
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _redact,
            ],
        )
    )
    logging.basicConfig(handlers=[handler], level=level.upper(), force=True)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    _ACCESS.enabled = logging.getLevelName(level.upper()) <= logging.INFO
    _ACCESS.json = fmt == "json"
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )


log = structlog.get_logger("halobuzz.http")

_SECURITY_HEADERS = [
    (b"vary", b"Origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_VALID_RID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def client_ip(scope: Scope, trust_forwarded_for: bool) -> str:
    """The caller's address; the last X-Forwarded-For hop only when the proxy is trusted."""
    if trust_forwarded_for:
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                return str(value.decode("latin-1").split(",")[-1].strip())
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class RequestContextMiddleware:
    """Pure-ASGI: request id, access log, metrics, security headers and a body size limit."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        access_log: bool = True,
        trust_forwarded_for: bool = False,
        upload_overrides: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes
        # Uploads that may be larger than max_upload_bytes: (path pattern, limit), e.g. radio tracks.
        self.upload_overrides = tuple(upload_overrides)
        self.access_log = access_log
        self.trust_forwarded_for = trust_forwarded_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = None
        length = None
        multipart = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _VALID_RID.match(candidate) else None
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"content-type":
                multipart = value.startswith(b"multipart/")
        rid = rid or os.urandom(16).hex()
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state["client_ip"] = client_ip(scope, self.trust_forwarded_for)
        limit = self.max_upload if multipart else self.max_body
        if multipart:
            path = scope["path"]
            limit = next((n for pattern, n in self.upload_overrides if pattern.match(path)), limit)
        status = 500
        rid_bytes = rid.encode()
        is_api = scope["path"].startswith("/api/")

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", rid_bytes))
                headers.extend(_SECURITY_HEADERS)
                if is_api:
                    headers.append(_API_CSP)
                message["headers"] = headers
            await send(message)

        if length is not None and (length < 0 or length > limit):
            await _send_error(send_wrapper, 413, "payload_too_large", f"request body exceeds {limit} bytes", rid)
            return

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = True
            await send_wrapper(message)

        try:
            await self.app(scope, receive_limited, send_tracking)
        except _BodyTooLarge:
            if not started:
                await _send_error(send_wrapper, 413, "payload_too_large", f"request body exceeds {limit} bytes", rid)
        except Exception:
            # When FastAPI raised, its handler has already logged the error and answered 500 in the
            # error shape (``started``); anything else failed ahead of routing and is handled here.
            if not started:
                log.exception("unhandled_error", request_id=rid, path=scope["path"])
                await _send_error(
                    send_wrapper,
                    500,
                    "internal_error",
                    "something went wrong; the request id identifies it in the logs",
                    rid,
                )
        finally:
            elapsed = time.perf_counter() - start
            template = (
                route_template(scope)
                or state.get("route_template")
                or ("cache" if state.get("cached") else "unmatched")
            )
            method = scope["method"]
            _observe(method, template, status, elapsed)
            if self.access_log and _ACCESS.enabled:
                _ACCESS.write(
                    {
                        "event": "request",
                        "level": "info",
                        "request_id": rid,
                        "method": method,
                        "path": scope["path"],
                        "route": template,
                        "status": status,
                        "latency_ms": round(elapsed * 1000, 2),
                        "user_id": state.get("user_id"),
                        "ip": state.get("client_ip"),
                    }
                )


# Labelled children are looked up once: ``labels()`` costs more than the observation itself.
_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _observe(method: str, template: str, status: int, elapsed: float) -> None:
    key = (method, template, status)
    pair = _children.get(key)
    if pair is None:
        pair = (HTTP_REQUESTS.labels(method, template, str(status)), HTTP_LATENCY.labels(method, template))
        _children[key] = pair
    pair[0].inc()
    pair[1].observe(elapsed)


class _AccessLog:
    """Access lines as JSON, written straight to stdout: one per request, so it must be cheap.

    structlog's processor chain costs more than serving a cached response; these lines carry
    the same fields and timestamp format as every other log line.
    """

    def __init__(self) -> None:
        self.enabled = True
        self.json = True

    def write(self, fields: dict[str, Any]) -> None:
        fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        if self.json:
            sys.stdout.buffer.write(orjson.dumps(fields) + b"\n")
            sys.stdout.flush()
        else:
            log.info(fields.pop("event"), **{k: v for k, v in fields.items() if k != "level"})


_ACCESS = _AccessLog()


def route_template(scope: Scope) -> str | None:
    """The full path template of the route that served the request (``/api/v1/users/{user_id}``).

    FastAPI includes routers lazily: ``scope["route"]`` holds the route as declared, without the
    prefixes it was included under; the effective route context holds the full template.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if isinstance(template, str):
        return template
    route = scope.get("route")
    declared = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(declared, str):
        return None
    regex = getattr(route, "path_regex", None)
    path: str = scope["path"]
    if regex is not None and not regex.match(path):
        # Recover the include prefix: the shortest leading part after which the route matches.
        for i, char in enumerate(path):
            if char == "/" and i and regex.match(path[i:]):
                return path[:i] + declared
    return declared


class _BodyTooLarge(StarletteHTTPException):
    """Raised while reading a body past the limit. An HTTP exception so that FastAPI, which turns
    other errors met while reading a body into 400, lets it through to the 413 handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds {limit} bytes")


async def _send_error(send: Send, status: int, code: str, message: str, rid: str) -> None:
    body = orjson.dumps(error_body(status, code, message, None, rid))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
