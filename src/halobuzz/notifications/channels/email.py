"""Email through the platform's mailer (SMTP, or ``.eml`` files in the embedded default).

SMTP answers map onto the same retry decisions as HTTP: 4xx replies and connection failures are
temporary (retried with backoff); 5xx replies are permanent refusals.
"""

from __future__ import annotations

import aiosmtplib

from halobuzz.core.mail import Mailer
from halobuzz.notifications.channels.base import Outgoing, Result, network_result


class EmailChannel:
    name = "email"

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    def available(self) -> bool:
        return True

    async def send(self, message: Outgoing) -> Result:
        try:
            await self.mailer.send(to=message.recipient.email, subject=message.subject, text=message.text)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            code = exc.recipients[0].code if exc.recipients else 550
            return Result(ok=False, status_code=code, retry=400 <= code < 500, error=f"SMTP recipient refused: {exc}")
        except aiosmtplib.SMTPResponseException as exc:
            temporary = 400 <= exc.code < 500
            return Result(ok=False, status_code=exc.code, retry=temporary, error=f"SMTP {exc.code}: {exc.message}")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return network_result(exc)
        return Result(ok=True, status_code=250)

    async def close(self) -> None:
        return None
