"""Text moderation: profanity and slurs (English, Nepali, Hindi, Urdu; native scripts and romanized),
spam (links, flooding, repeated characters), personal data (phone numbers, emails) and per-channel
blocked terms. Pure functions over precomputed sets: a chat message costs a few microseconds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from halobuzz.ai import lexicon

Action = Literal["allow", "hold", "block"]

_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
# Letters plus the combining marks of Devanagari and Arabic script (vowel signs are not \w in Python).
_TOKEN = re.compile(r"(?:[^\W_]|[\u0900-\u0963\u0966-\u097f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]|[@$!])+")
_URL = re.compile(r"(?:https?://|www\.)\S+|\b[a-z0-9-]+\.(?:com|net|org|io|ly|gg|xyz|ru|info|biz|me|co)\b", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_PHONE = re.compile(r"(?<!\d)(?:\+?\d[\d\s().-]{7,}\d)(?!\d)")
_REPEAT = re.compile(r"(.)\1{7,}", re.S)
_REGIONS: dict[str, frozenset[str]] = {
    # Regions whose rule set leaves out a label (e.g. where links are routine).
    "global": frozenset(),
}


def _collapse(word: str) -> str:
    out: list[str] = []
    for ch in word:
        if not out or out[-1] != ch:
            out.append(ch)
    return "".join(out)


def _squeeze(word: str) -> str:
    """Runs of three or more of a letter → two (``fuuuuck`` → ``fuuck``, ``assss`` → ``ass``)."""
    out: list[str] = []
    for ch in word:
        if len(out) >= 2 and out[-1] == ch and out[-2] == ch:
            continue
        out.append(ch)
    return "".join(out)


def normalize_token(word: str) -> str:
    """Casefold, undo leetspeak, drop invisible characters, squeeze runs of a letter to two."""
    word = unicodedata.normalize("NFKC", word).translate(_INVISIBLE).casefold().strip("!")
    if word.isascii() and not word.isdigit():  # numbers stay numbers (455 is not "ass")
        word = word.translate(_LEET)
    return _squeeze(word)


def tokens(text: str) -> list[str]:
    """Words of ``text``, normalized; runs of single letters (``f u c k``, ``f.u.c.k``) are joined."""
    raw = _TOKEN.findall(unicodedata.normalize("NFKC", text).translate(_INVISIBLE))
    out: list[str] = []
    run: list[str] = []
    for word in raw:
        if len(word) == 1:
            run.append(word)
            continue
        if run:
            out.append(normalize_token("".join(run)))
            run = []
        out.append(normalize_token(word))
    if run:
        out.append(normalize_token("".join(run)))
    return [w for w in out if w]


@dataclass(frozen=True, slots=True)
class Term:
    label: str
    language: str


@dataclass(frozen=True, slots=True)
class Result:
    labels: dict[str, float]
    matches: tuple[str, ...] = ()
    language: str = "und"

    @property
    def score(self) -> float:
        return max(self.labels.values(), default=0.0)


@dataclass(frozen=True, slots=True)
class Policy:
    """Maps confidence to an action: at or above ``block`` → block, ``hold`` → hold for review."""

    hold: float = 0.6
    block: float = 0.9

    def decide(self, result: Result) -> Action:
        if result.score >= self.block:
            return "block"
        if result.score >= self.hold:
            return "hold"
        return "allow"


@dataclass
class TextModerator:
    """Precomputed word lists; `analyze` is thread-safe and allocation-light."""

    region: str = "global"
    words: dict[str, Term] = field(default_factory=dict)
    # Fully collapsed forms of entries that have no doubled letter (so ``ass`` never becomes ``as``).
    collapsed: dict[str, Term] = field(default_factory=dict)
    stems: dict[str, Term] = field(default_factory=dict)
    allow: frozenset[str] = frozenset()

    @classmethod
    def default(cls, region: str = "global", extra: Iterable[tuple[str, str, str]] = ()) -> TextModerator:
        mod = cls(region=region, allow=frozenset(normalize_token(w) for w in lexicon.ALLOW))
        for label, table in (("profanity", lexicon.PROFANITY), ("slur", lexicon.SLURS)):
            for language, entries in table.items():
                for entry in entries:
                    mod.add(entry, label, language)
        for entry, label, language in extra:
            mod.add(entry, label, language)
        return mod

    def add(self, entry: str, label: str, language: str) -> None:
        key = normalize_token(entry)
        term = Term(label, language)
        current = self.words.get(key)
        if current is None or current.label != "slur":
            self.words[key] = term
        if _collapse(key) == key:
            self.collapsed.setdefault(key, term)
        if entry in lexicon.STEMS:
            self.stems[_collapse(key)] = term

    def analyze(self, text: str, *, blocked_terms: Iterable[str] = ()) -> Result:
        labels: dict[str, float] = {}
        matches: list[str] = []
        language = detect_script(text)
        words = tokens(text)
        blocked = {normalize_token(t) for t in blocked_terms}
        for word in words:
            if word in self.allow:
                continue
            term = self.words.get(word)
            if term is None:
                term = self.collapsed.get(_collapse(word))
            if term is None:
                flat = _collapse(word)
                for stem, candidate in self.stems.items():
                    if flat.startswith(stem):
                        term = candidate
                        break
            if term is not None:
                conf = 0.95 if term.label == "slur" else 0.75
                labels[term.label] = max(labels.get(term.label, 0.0), conf)
                matches.append(word)
                if language == "und":
                    language = term.language
            if word in blocked:
                labels["blocked_term"] = 0.95
                matches.append(word)
        if len(matches) >= 2 and "profanity" in labels:
            labels["profanity"] = 0.92
        skip = _REGIONS.get(self.region, frozenset())
        if "spam" not in skip:
            spam = 0.0
            if _URL.search(text):
                spam = max(spam, 0.7)
            if _REPEAT.search(text):
                spam = max(spam, 0.5)  # reported, but below the default hold threshold
            if len(words) >= 6 and len(set(words)) <= len(words) // 4:
                spam = max(spam, 0.8)
            if spam:
                labels["spam"] = spam
        if "pii" not in skip:
            if _EMAIL.search(text):
                labels["pii"] = 0.7
            else:
                for m in _PHONE.finditer(text):
                    if sum(c.isdigit() for c in m.group()) >= 9:
                        labels["pii"] = 0.7
                        break
        return Result(labels=labels, matches=tuple(matches), language=language)


def detect_script(text: str) -> str:
    """A cheap guess from the script: Devanagari → hi/ne, Arabic → ur, otherwise und."""
    for ch in text:
        o = ord(ch)
        if 0x0900 <= o <= 0x097F:
            return "hi"
        if 0x0600 <= o <= 0x06FF:
            return "ur"
    return "und"
