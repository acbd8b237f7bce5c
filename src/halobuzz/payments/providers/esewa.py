"""eSewa ePay v2: a signed form post to eSewa; the success callback is verified by its own
signature, matched to the intent, and confirmed with the status API before coins are credited."""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from halobuzz.config import PaymentsSettings
from halobuzz.core.errors import InvalidInput, ServiceUnavailable
from halobuzz.payments.providers.base import Checkout, IntentInfo, InvalidSignature, call, return_url

FORM_SIGNED_FIELDS = "total_amount,transaction_uuid,product_code"


def sign(secret: str, message: str) -> str:
    """eSewa's signature: base64 of HMAC-SHA256 over ``message``."""
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


def signed_message(fields: dict[str, Any], names: str) -> str:
    return ",".join(f"{name}={fields[name]}" for name in names.split(","))


def rupees(paisa: int) -> str:
    """An amount in paisa as eSewa writes rupees (``110`` or ``110.5``)."""
    value = Decimal(paisa) / 100
    return str(value.quantize(Decimal(1))) if value == value.to_integral_value() else str(value.normalize())


def to_paisa(value: Any) -> int | None:
    try:
        amount = Decimal(str(value).replace(",", "")) * 100
    except InvalidOperation:
        return None
    return int(amount) if amount == amount.to_integral_value() else None


class EsewaProvider:
    name = "esewa"
    currencies: tuple[str, ...] | None = ("NPR",)

    def __init__(self, settings: PaymentsSettings) -> None:
        self.settings = settings
        assert settings.esewa_secret_key is not None
        self.secret = settings.esewa_secret_key.get_secret_value()

    async def start(self, intent: IntentInfo) -> Checkout:
        s = self.settings
        total = rupees(intent.amount)
        fields = {
            "amount": total,
            "tax_amount": "0",
            "total_amount": total,
            "transaction_uuid": str(intent.id),
            "product_code": s.esewa_product_code,
            "product_service_charge": "0",
            "product_delivery_charge": "0",
            # The buyer's browser comes back to the web app, which confirms through the callback route.
            "success_url": return_url(s, "/wallet/return/esewa"),
            "failure_url": return_url(s, f"/wallet/return/esewa?payment_intent={intent.id}&status=failed"),
            "signed_field_names": FORM_SIGNED_FIELDS,
        }
        fields["signature"] = sign(self.secret, signed_message(fields, FORM_SIGNED_FIELDS))
        return Checkout({"type": "form_post", "url": s.esewa_form_url, "fields": fields}, str(intent.id))

    def decode_callback(self, data: str) -> dict[str, Any]:
        """The callback's fields, after checking the signature over its ``signed_field_names``."""
        try:
            fields = orjson.loads(base64.b64decode(data + "=" * (-len(data) % 4), validate=False))
            names = str(fields["signed_field_names"])
            message = signed_message(fields, names)
            signature = str(fields["signature"])
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            raise InvalidInput("the eSewa callback data is not valid", code="invalid_callback") from exc
        if not isinstance(fields, dict) or not hmac.compare_digest(sign(self.secret, message), signature):
            raise InvalidSignature("the eSewa callback signature does not match")
        for required in ("transaction_uuid", "total_amount", "product_code", "status"):
            if required not in names.split(","):
                raise InvalidSignature(f"the eSewa callback does not sign {required}")
        return dict(fields)

    async def status(self, *, transaction_uuid: str, total_amount: str) -> dict[str, Any]:
        """eSewa's transaction status API answer for one payment."""
        s = self.settings
        response = await call(
            s,
            "GET",
            s.esewa_status_base.rstrip("/") + "/api/epay/transaction/status/",
            provider=self.name,
            params={
                "product_code": s.esewa_product_code,
                "total_amount": total_amount,
                "transaction_uuid": transaction_uuid,
            },
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            raise ServiceUnavailable(
                "eSewa's status check failed", code="provider_error", details={"status": response.status_code}
            )
        return dict(body)
