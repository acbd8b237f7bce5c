"""Outgoing mail: SMTP (aiosmtplib) when ``MAIL_SMTP_HOST`` is set, else ``.eml`` files under
``<data dir>/mail/`` so a new user of the embedded default can still follow the links."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol

import aiosmtplib
import structlog

from halobuzz.config import MailSettings
from halobuzz.core.clock import utcnow

log = structlog.get_logger(__name__)


class Mailer(Protocol):
    async def send(self, *, to: str, subject: str, text: str) -> None: ...


def build_message(sender: str, to: str, subject: str, text: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="halobuzz.local")
    msg.set_content(text)
    return msg


class SmtpMailer:
    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    async def send(self, *, to: str, subject: str, text: str) -> None:
        s = self.settings
        assert s.smtp_host
        await aiosmtplib.send(
            build_message(s.from_address, to, subject, text),
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_seconds,
        )
        log.info("mail_sent", to_domain=to.rsplit("@", 1)[-1], subject=subject)


class FileMailer:
    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, *, to: str, subject: str, text: str) -> None:
        msg = build_message(self.sender, to, subject, text)
        name = f"{utcnow():%Y%m%dT%H%M%S%f}-{to.replace('@', '_at_')}.eml"
        path = self.directory / name
        await asyncio.to_thread(self._write, path, msg.as_bytes())
        log.info("mail_written", path=str(path), subject=subject)

    def _write(self, path: Path, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def make_mailer(settings: MailSettings, data_dir: Path) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(settings)
    return FileMailer(data_dir / "mail", settings.from_address)
