"""Page languages: English, Nepali, Hindi, Urdu (right to left) and Bengali.

Catalogs are JSON files in ``web/i18n`` (key → text; English is the fallback for a missing key).
The language comes from ``?lang=`` (remembered in the ``hb_lang`` cookie), else the signed-in
user's profile language, else the browser's ``Accept-Language``, else English.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES: dict[str, str] = {"en": "English", "ne": "नेपाली", "hi": "हिन्दी", "ur": "اردو", "bn": "বাংলা"}
RTL = frozenset({"ur"})
DEFAULT = "en"
LANG_COOKIE = "hb_lang"
_DIR = Path(__file__).parent / "i18n"


@cache
def catalog(lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    return data


def translate(lang: str, key: str, **values: object) -> str:
    """The text of ``key``; with ``count=1`` the ``key.one`` form when the language has one."""
    text = None
    if values.get("count") == 1:
        text = catalog(lang).get(f"{key}.one") or (catalog(DEFAULT).get(f"{key}.one") if lang == DEFAULT else None)
    text = text or catalog(lang).get(key) or catalog(DEFAULT).get(key) or key
    return text.format(**values) if values else text


def from_accept_language(header: str | None) -> str | None:
    """The best supported language of an ``Accept-Language`` header (q-values respected)."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        code = tag.strip().lower().split("-")[0]
        if code in LANGUAGES and q > 0:
            ranked.append((-q, index, code))
    return min(ranked)[2] if ranked else None


def choose(*, query: str | None, cookie: str | None, profile: str | None, accept: str | None) -> str:
    for candidate in (query, cookie, profile):
        if candidate and candidate.lower() in LANGUAGES:
            return candidate.lower()
    return from_accept_language(accept) or DEFAULT


def has_key(key: str) -> bool:
    """Whether ``key`` is a known text (the English catalog names every key)."""
    return key in catalog(DEFAULT)
