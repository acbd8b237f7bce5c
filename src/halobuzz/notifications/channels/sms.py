"""SMS through a Twilio-compatible REST API.

``POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP Basic auth
(account SID, auth token) and the form fields ``To``, ``From``, ``Body``; 201 returns the message
resource (its ``sid`` is kept as the delivery's provider id). 429 and 5xx are retried.
"""

from __future__ import annotations

import httpx

from halobuzz.config import Settings
from halobuzz.notifications.channels.base import Outgoing, Result, http_result, network_result

# SMS bodies are cut to this many characters (a few concatenated segments at most).
MAX_BODY = 320


class SmsChannel:
    name = "sms"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings.notifications
        self.http = http

    def available(self) -> bool:
        s = self.settings
        return bool(s.twilio_account_sid and s.twilio_auth_token and s.twilio_from)

    async def send(self, message: Outgoing) -> Result:
        s = self.settings
        assert s.twilio_account_sid and s.twilio_auth_token and s.twilio_from
        if not message.recipient.phone:
            return Result(ok=False, target_gone=True, error="the user has no phone number")
        text = f"{message.title}: {message.body}" if message.body else message.title
        url = f"{s.twilio_api_base.rstrip('/')}/2010-04-01/Accounts/{s.twilio_account_sid}/Messages.json"
        try:
            response = await self.http.post(
                url,
                data={"To": message.recipient.phone, "From": s.twilio_from, "Body": text[:MAX_BODY]},
                auth=(s.twilio_account_sid, s.twilio_auth_token.get_secret_value()),
            )
        except httpx.HTTPError as exc:
            return network_result(exc)
        sid = None
        if response.status_code in (200, 201):
            try:
                sid = str(response.json().get("sid") or "") or None
            except ValueError:
                sid = None
        return http_result(response, provider_id=sid)

    async def close(self) -> None:
        return None
