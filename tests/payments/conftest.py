"""Local HTTP servers speaking the payment providers' documented APIs (Stripe Checkout, eSewa's
status API, Khalti KPG-2), each on a free port and stopped by the test that started it."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

STRIPE_KEY = "sk_test_" + "s" * 24
STRIPE_WEBHOOK_SECRET = "whsec_" + "w" * 24
ESEWA_SECRET = "8gBm/:&EnhH.1/q"
KHALTI_KEY = "test_secret_key_" + "k" * 16


@dataclass
class FakeProvider:
    """State of the fake provider: what it was asked and what it will answer."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    esewa_status: str = "COMPLETE"
    khalti: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_next: int = 0
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pay_stripe(self, session_id: str) -> dict[str, Any]:
        """The payer completes a Checkout Session: it is paid, with a PaymentIntent."""
        with self.lock:
            found = next(x for x in self.sessions.values() if x["id"] == session_id)
            found.update(payment_status="paid", status="complete", payment_intent=f"pi_{session_id}")
            return dict(found)

    def handle(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        with self.lock:
            self.requests.append({"method": method, "path": path, "query": query, "headers": headers, "body": body})
            if self.fail_next:
                self.fail_next -= 1
                return 503, {"error": "try again"}
            if path == "/v1/checkout/sessions" and method == "POST":
                if headers.get("authorization") != f"Bearer {STRIPE_KEY}":
                    return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
                key = headers.get("idempotency-key", "")
                if key in self.sessions:
                    return 200, self.sessions[key]
                form = dict(urllib.parse.parse_qsl(body.decode()))
                sid = f"cs_test_{len(self.sessions) + 1:04d}"
                session = {
                    "id": sid,
                    "object": "checkout.session",
                    "url": f"https://checkout.stripe.test/c/pay/{sid}",
                    "amount_total": int(form["line_items[0][price_data][unit_amount]"]),
                    "currency": form["line_items[0][price_data][currency]"],
                    "client_reference_id": form["client_reference_id"],
                    "metadata": {"intent_id": form["metadata[intent_id]"]},
                    "payment_status": "unpaid",
                    "mode": form["mode"],
                }
                self.sessions[key] = session
                return 200, session
            if path.startswith("/v1/") and headers.get("authorization") != f"Bearer {STRIPE_KEY}":
                return 401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}}
            if path.startswith("/v1/checkout/sessions/") and method == "GET":
                sid = path.rsplit("/", 1)[1]
                found = next((x for x in self.sessions.values() if x["id"] == sid), None)
                if found is None:
                    return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}
                return 200, found
            if path == "/v1/refunds" and method == "POST":
                key = headers.get("idempotency-key", "")
                if key in self.refunds:
                    return 200, self.refunds[key]
                form = dict(urllib.parse.parse_qsl(body.decode()))
                pi = form.get("payment_intent")
                paid = next((x for x in self.sessions.values() if x.get("payment_intent") == pi), None)
                if paid is None:
                    return 400, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}
                refund = {
                    "id": f"re_test_{len(self.refunds) + 1:04d}",
                    "object": "refund",
                    "amount": paid["amount_total"],
                    "payment_intent": pi,
                    "status": "succeeded",
                }
                self.refunds[key] = refund
                return 200, refund
            if path == "/api/epay/transaction/status/" and method == "GET":
                return 200, {
                    "product_code": query.get("product_code"),
                    "transaction_uuid": query.get("transaction_uuid"),
                    "total_amount": float(query.get("total_amount", "0")),
                    "status": self.esewa_status,
                    "ref_id": "0007G36" if self.esewa_status == "COMPLETE" else None,
                }
            if path.startswith("/api/v2/epayment/") and headers.get("authorization") != f"Key {KHALTI_KEY}":
                return 401, {"detail": "Invalid token.", "status_code": 401}
            if path == "/api/v2/epayment/initiate/" and method == "POST":
                data = json.loads(body)
                if data["amount"] < 1000:
                    return 400, {"amount": ["Amount should be greater than Rs. 10, that is 1000 paisa."]}
                pidx = f"pidx{len(self.khalti) + 1:04d}"
                self.khalti[pidx] = {"pidx": pidx, "total_amount": data["amount"], "status": "Pending", "order": data}
                return 200, {
                    "pidx": pidx,
                    "payment_url": f"https://test-pay.khalti.test/?pidx={pidx}",
                    "expires_at": "2030-01-01T00:00:00+05:45",
                    "expires_in": 1800,
                }
            if path == "/api/v2/epayment/lookup/" and method == "POST":
                pidx = json.loads(body).get("pidx")
                record = self.khalti.get(pidx)
                if record is None:
                    return 404, {"detail": "Not found.", "error_key": "validation_error"}
                return 200, {
                    "pidx": pidx,
                    "total_amount": record["total_amount"],
                    "status": record["status"],
                    "transaction_id": "GFq9PFS7b2iYvL8Lir9oXe" if record["status"] == "Completed" else None,
                    "fee": 0,
                    "refunded": False,
                }
            return 404, {"error": "not found"}


@pytest.fixture
def fake_provider() -> Iterator[FakeProvider]:
    state = FakeProvider()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = state.handle(
                self.command, parsed.path, dict(urllib.parse.parse_qsl(parsed.query)), headers, body
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def payments_app(app_factory: Callable[..., Any], fake_provider: FakeProvider) -> Callable[..., Any]:
    """An app with every provider configured against the fake provider server."""

    async def start(**payments: Any) -> Any:
        return await app_factory(
            payments={
                "stripe_secret_key": STRIPE_KEY,
                "stripe_webhook_secret": STRIPE_WEBHOOK_SECRET,
                "stripe_api_base": fake_provider.url,
                "esewa_secret_key": ESEWA_SECRET,
                "esewa_status_base": fake_provider.url,
                "khalti_secret_key": KHALTI_KEY,
                "khalti_api_base": fake_provider.url,
                "http_retries": 1,
                "http_timeout_seconds": 5,
                **payments,
            }
        )

    return start
