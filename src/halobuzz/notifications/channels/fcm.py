"""Mobile push through Firebase Cloud Messaging HTTP v1.

Auth is the OAuth 2.0 service-account flow: a JWT signed RS256 with the service account's private
key (``iss`` = client email, ``scope`` = firebase.messaging, ``aud`` = the token URI) is exchanged at
the account's ``token_uri`` (``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer``) for an access
token, cached until shortly before it expires. Messages go to
``POST {api_base}/v1/projects/{project}/messages:send`` with ``Authorization: Bearer <token>``.
A 404 ``UNREGISTERED`` means the device token is dead: the device is removed. 429 and 5xx are retried; a 401 refreshes the token once.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import jwt

from halobuzz.config import Settings
from halobuzz.notifications.channels.base import Outgoing, Result, http_result, network_result

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _error_codes(response: httpx.Response) -> set[str]:
    """The FCM error codes of an error body (``error.status`` and each detail's ``errorCode``)."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return set()
    codes = {str(error.get("status") or "")}
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            codes.add(str(detail["errorCode"]))
    return codes - {""}


class FcmChannel:
    name = "mobile_push"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings.notifications
        self.http = http
        self.account = self._account()
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def _account(self) -> dict[str, Any] | None:
        s = self.settings
        raw: str | None = None
        if s.fcm_service_account_json is not None:
            raw = s.fcm_service_account_json.get_secret_value()
        elif s.fcm_service_account_file is not None:
            raw = s.fcm_service_account_file.read_text()
        if not raw:
            return None
        account: dict[str, Any] = json.loads(raw)
        return account

    @property
    def project(self) -> str | None:
        return self.settings.fcm_project_id or (self.account or {}).get("project_id")

    def available(self) -> bool:
        return bool(self.account and self.project)

    async def access_token(self, *, refresh: bool = False) -> str:
        """A cached OAuth access token, exchanged again when it is about to expire."""
        async with self._lock:
            if self._token and not refresh and time.time() < self._expires - 60:
                return self._token
            assert self.account is not None
            token_uri = str(self.account.get("token_uri") or "https://oauth2.googleapis.com/token")
            now = int(time.time())
            assertion = jwt.encode(
                {"iss": self.account["client_email"], "scope": SCOPE, "aud": token_uri, "iat": now, "exp": now + 3600},
                self.account["private_key"],
                algorithm="RS256",
                headers={"kid": str(self.account.get("private_key_id") or "")}
                if self.account.get("private_key_id")
                else None,
            )
            response = await self.http.post(token_uri, data={"grant_type": GRANT_TYPE, "assertion": assertion})
            response.raise_for_status()
            body = response.json()
            self._token = str(body["access_token"])
            self._expires = time.time() + float(body.get("expires_in", 3600))
            return self._token

    def body(self, message: Outgoing) -> dict[str, Any]:
        assert message.target is not None
        data = {"type": message.type, "url": message.url}
        if message.notification_id:
            data["notification_id"] = str(message.notification_id)
        return {
            "message": {
                "token": message.target.token,
                "notification": {"title": message.title, "body": message.body},
                "data": data,  # FCM data values are strings
                "android": {"priority": "high" if message.type in ("stream_live", "raid_incoming") else "normal"},
            }
        }

    async def send(self, message: Outgoing) -> Result:
        url = f"{self.settings.fcm_api_base.rstrip('/')}/v1/projects/{self.project}/messages:send"
        payload = self.body(message)
        try:
            token = await self.access_token()
            response = await self.http.post(url, json=payload, headers={"Authorization": f"Bearer {token}"})
            if response.status_code == 401:
                token = await self.access_token(refresh=True)
                response = await self.http.post(url, json=payload, headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPStatusError as exc:  # the token exchange failed
            code = exc.response.status_code
            retry = code == 429 or code >= 500
            return Result(ok=False, status_code=code, retry=retry, error=f"FCM token exchange failed: HTTP {code}")
        except httpx.HTTPError as exc:
            return network_result(exc)
        codes = _error_codes(response) if response.status_code >= 400 else set()
        if "UNREGISTERED" in codes:
            return Result(
                ok=False, status_code=response.status_code, target_gone=True, error="device token unregistered"
            )
        name = None
        if response.status_code == 200:
            try:
                name = str(response.json().get("name") or "") or None
            except ValueError:
                name = None
        return http_result(response, provider_id=name)

    async def close(self) -> None:
        return None
