"""Per-language texts of notifications: short title/body (push, SMS, in-app) and email templates.

``templates/<lang>/messages.json`` holds the titles and bodies; ``email.txt.j2`` and
``digest.txt.j2`` the mails. The recipient's ``User.language`` picks the language; languages
without templates fall back to English.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
FALLBACK = "en"


@lru_cache
def languages() -> frozenset[str]:
    return frozenset(p.name for p in TEMPLATE_DIR.iterdir() if (p / "messages.json").is_file())


def language_of(code: str | None) -> str:
    """The template language for a user's language code (``ne``, ``ne-NP`` … ; else English)."""
    base = (code or "").split("-")[0].lower()
    return base if base in languages() else FALLBACK


@lru_cache
def _messages(lang: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TEMPLATE_DIR / lang / "messages.json").read_text(encoding="utf-8"))
    return data


@lru_cache
def _env() -> Environment:
    # Plain-text mail: nothing is HTML, so no autoescaping; missing variables are errors.
    return Environment(  # noqa: S701 - text/plain templates
        loader=FileSystemLoader(str(TEMPLATE_DIR)), undefined=StrictUndefined, keep_trailing_newline=True
    )


class _Lenient(dict[str, Any]):
    """``str.format_map`` values: a missing key renders empty rather than failing a delivery."""

    def __missing__(self, key: str) -> str:
        return ""


def _format(template: str, values: dict[str, Any]) -> str:
    return string.Formatter().vformat(template, (), _Lenient(values))


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("username") or value.get("display_name") or "")
    return "" if value is None else str(value)


def _values(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """The placeholders of a type's texts, from the notification's ``data``."""
    values: dict[str, Any] = {k: v for k, v in data.items() if not isinstance(v, dict | list)}
    for key in ("creator", "follower", "sender", "raider"):
        if key in data:
            values[key] = _name(data[key])
    gift = data.get("gift")
    if isinstance(gift, dict):
        values["gift"] = gift.get("name", "")
    if type_ == "payment_completed" and isinstance(data.get("amount"), int):
        values["amount"] = f"{data['amount'] / 100:.2f}"
    return values


@dataclass(frozen=True, slots=True)
class Text:
    title: str
    body: str


def variant(type_: str, data: dict[str, Any]) -> str:
    """The template key: the type, or ``moderation.action`` / ``moderation.appeal``."""
    if type_ == "moderation":
        return "moderation.appeal" if data.get("kind") == "appeal" else "moderation.action"
    return type_


def render(type_: str, data: dict[str, Any], *, language: str | None) -> Text:
    """The title and body of a notification in the recipient's language."""
    lang = language_of(language)
    key = variant(type_, data)
    entry = _messages(lang).get(key) or _messages(FALLBACK).get(key) or {"title": type_, "body": ""}
    values = _values(type_, data)
    return Text(_format(entry["title"], values), _format(entry["body"], values))


def subject(kind: str, *, language: str | None, **values: Any) -> str:
    """A mail subject: ``email.subject`` (one notification) or ``digest.subject``."""
    lang = language_of(language)
    template = _messages(lang).get(f"{kind}.subject") or _messages(FALLBACK)[f"{kind}.subject"]
    return _format(str(template), values)


def email_text(*, language: str | None, name: str, title: str, body: str, url: str, settings_url: str) -> str:
    """The plain-text mail of one notification."""
    template = _env().get_template(f"{language_of(language)}/email.txt.j2")
    return template.render(name=name, title=title, body=body, url=url, settings_url=settings_url)


def digest_text(*, language: str | None, name: str, items: list[dict[str, str]], url: str, settings_url: str) -> str:
    """The plain-text daily digest: ``items`` are ``{when, title, body}``."""
    template = _env().get_template(f"{language_of(language)}/digest.txt.j2")
    return template.render(name=name, items=items, url=url, settings_url=settings_url)


def local_time(at: datetime, timezone: str | None) -> str:
    """``at`` as the recipient's local wall time (``YYYY-MM-DD HH:MM``)."""
    return at.astimezone(zone_of(timezone)).strftime("%Y-%m-%d %H:%M")


def zone_of(name: str | None) -> ZoneInfo:
    """The user's zone; UTC when unset or unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")
