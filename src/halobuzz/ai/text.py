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


# Confidence per label of a list match (a rule set may override it).
CONFIDENCE = {"slur": 0.95, "profanity": 0.75, "insult": 0.45}


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


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A region's rules: labels that do not apply, confidence overrides, thresholds, extra terms."""

    name: str
    skip: frozenset[str] = frozenset()
    confidence: dict[str, float] = field(default_factory=dict)
    hold: float | None = None
    block: float | None = None
    terms: dict[str, str] = field(default_factory=dict)  # extra term → label

    def policy(self, base: Policy) -> Policy:
        if self.hold is None and self.block is None:
            return base
        return Policy(hold=self.hold if self.hold is not None else base.hold, block=self.block or base.block)

    @classmethod
    def from_dict(cls, name: str, data: dict[str, object]) -> RuleSet:
        """A rule set from settings JSON: ``{"skip": [...], "confidence": {...}, "hold", "block", "terms"}``."""
        skip = data.get("skip", [])
        conf = data.get("confidence", {})
        terms = data.get("terms", {})
        if not isinstance(skip, list) or not isinstance(conf, dict) or not isinstance(terms, dict):
            raise ValueError(f"MODERATION_REGION_RULES[{name!r}]: skip is a list, confidence and terms are objects")
        hold, block = data.get("hold"), data.get("block")
        return cls(
            name=name,
            skip=frozenset(str(x) for x in skip),
            confidence={str(k): float(v) for k, v in conf.items()},
            hold=float(hold) if isinstance(hold, int | float) else None,
            block=float(block) if isinstance(block, int | float) else None,
            terms={str(k): str(v) for k, v in terms.items()},
        )


# Built-in region rule sets; operators add or replace them with MODERATION_REGION_RULES.
# Nepal, India and Pakistan hold the milder insults of the lists (murkha, badmas, kuttiya …) for
# review, where elsewhere they are only reported.
BUILTIN_RULES: dict[str, RuleSet] = {
    "global": RuleSet("global"),
    "np": RuleSet("np", confidence={"insult": 0.65}),
    "in": RuleSet("in", confidence={"insult": 0.65}),
    "pk": RuleSet("pk", confidence={"insult": 0.65}),
}


def _words_of(entry: str) -> list[str]:
    return tokens(entry)


@dataclass(frozen=True, slots=True)
class CompiledTerms:
    """Blocked terms normalized once (a channel's list is reused for every message)."""

    words: frozenset[str] = frozenset()
    phrases: tuple[tuple[str, ...], ...] = ()


def compile_terms(terms: Iterable[str]) -> CompiledTerms:
    words: set[str] = set()
    phrases: list[tuple[str, ...]] = []
    for raw in terms:
        parts = tokens(raw)
        if len(parts) == 1:
            words.add(parts[0])
        elif parts:
            phrases.append(tuple(parts))
    return CompiledTerms(frozenset(words), tuple(phrases))


@dataclass
class TextModerator:
    """Precomputed word lists; `analyze` is thread-safe and allocation-light."""

    region: str = "global"
    words: dict[str, Term] = field(default_factory=dict)
    # Fully collapsed forms of entries that have no doubled letter (so ``ass`` never becomes ``as``).
    collapsed: dict[str, Term] = field(default_factory=dict)
    stems: dict[str, Term] = field(default_factory=dict)
    phrases: dict[str, Term] = field(default_factory=dict)
    # First word of a phrase → the longest phrase starting with it (only those words start a look-up).
    phrase_heads: dict[str, int] = field(default_factory=dict)
    max_phrase: int = 1
    # Stems by their first four letters (every stem has at least four), so a word checks a handful.
    stem_index: dict[str, list[tuple[str, Term]]] = field(default_factory=dict)
    allow: frozenset[str] = frozenset()
    latin_suffixes: tuple[str, ...] = ()
    deva_suffixes: tuple[str, ...] = ()
    rules: dict[str, RuleSet] = field(default_factory=lambda: dict(BUILTIN_RULES))
    # A rule set's own terms (normalized words or phrases), matched only in its region.
    region_words: dict[str, dict[str, Term]] = field(default_factory=dict)

    @classmethod
    def default(
        cls,
        region: str = "global",
        extra: Iterable[tuple[str, str, str]] = (),
        *,
        rules: dict[str, RuleSet] | None = None,
    ) -> TextModerator:
        from halobuzz.ai import wordlists

        allow = {normalize_token(w) for w in lexicon.ALLOW}
        allow |= {normalize_token(w) for w in wordlists.nepali_allowed()}
        allow |= {normalize_token(w) for w in wordlists.glin_allowed()}
        latin, deva = wordlists.suffixes()
        mod = cls(
            region=region,
            allow=frozenset(allow),
            latin_suffixes=latin,
            deva_suffixes=deva,
            rules={**BUILTIN_RULES, **(rules or {})},
        )
        # Third-party lists first, so our own entries (and their labels) win where both have a word.
        for text, label, language in (*wordlists.nepali_entries(), *wordlists.glin_entries()):
            mod.add(text, label, language)
        for stem in wordlists.nepali_stems():
            mod.add_stem(stem, "profanity", "ne")
        for label, table in (("profanity", lexicon.PROFANITY), ("slur", lexicon.SLURS)):
            for language, entries in table.items():
                for entry in entries:
                    mod.add(entry, label, language)
        for entry, label, language in extra:
            mod.add(entry, label, language)
        for rule_set in mod.rules.values():
            region_table = mod.region_words.setdefault(rule_set.name, {})
            for term, label in rule_set.terms.items():
                parts = _words_of(term)
                if parts:
                    region_table[" ".join(parts)] = Term(label, "und")
        return mod

    def add(self, entry: str, label: str, language: str) -> None:
        if "*" in entry:
            return
        parts = _words_of(entry)
        if not parts:
            return
        term = Term(label, language)
        if len(parts) > 1:
            key = " ".join(parts)
            current = self.phrases.get(key)
            if current is None or current.label != "slur":
                self.phrases[key] = term
            self.max_phrase = max(self.max_phrase, len(parts))
            self.phrase_heads[parts[0]] = max(self.phrase_heads.get(parts[0], 0), len(parts))
            return
        key = parts[0]
        current = self.words.get(key)
        if current is None or current.label != "slur" or label == "slur":
            self.words[key] = term
        if _collapse(key) == key:
            self.collapsed[key] = term
        if entry in lexicon.STEMS:
            self._index_stem(_collapse(key), term, replace=True)

    def add_stem(self, stem: str, label: str, language: str) -> None:
        parts = _words_of(stem)
        if len(parts) == 1:
            self._index_stem(_collapse(parts[0]), Term(label, language), replace=False)

    def _index_stem(self, flat: str, term: Term, *, replace: bool) -> None:
        if len(flat) < 4 or (flat in self.stems and not replace):
            return
        self.stems[flat] = term
        bucket = [(s, t) for s, t in self.stem_index.get(flat[:4], []) if s != flat]
        bucket.append((flat, term))
        self.stem_index[flat[:4]] = bucket

    def rule_set(self, region: str | None = None) -> RuleSet:
        return self.rules.get(region or self.region) or self.rules["global"]

    def _lookup(self, word: str) -> Term | None:
        term = self.words.get(word)
        if term is None:
            term = self.collapsed.get(_collapse(word))
        if term is None:
            flat = _collapse(word)
            for stem, candidate in self.stem_index.get(flat[:4], ()):
                if flat.startswith(stem):
                    return candidate
        return term

    def _strip_suffix(self, word: str) -> Term | None:
        """A list word with a postposition glued on (``mujiko``, ``randiharu``, ``मुजीको``)."""
        suffixes = self.latin_suffixes if word.isascii() else self.deva_suffixes
        for suffix in suffixes:
            if len(word) - len(suffix) >= 3 and word.endswith(suffix):
                base = word[: -len(suffix)]
                if base in self.allow:
                    return None
                term = self.words.get(base) or self.collapsed.get(_collapse(base))
                if term is not None:
                    return term
        return None

    def analyze(
        self, text: str, *, blocked_terms: Iterable[str] | CompiledTerms = (), region: str | None = None
    ) -> Result:
        rules = self.rule_set(region)
        labels: dict[str, float] = {}
        matches: list[str] = []
        language = detect_script(text)
        words = tokens(text)
        compiled = blocked_terms if isinstance(blocked_terms, CompiledTerms) else compile_terms(blocked_terms)
        blocked_words = compiled.words
        blocked_phrases = compiled.phrases
        conf = rules.confidence

        def hit(term: Term, word: str) -> None:
            nonlocal language
            score = conf.get(term.label, CONFIDENCE.get(term.label, 0.75))
            labels[term.label] = max(labels.get(term.label, 0.0), score)
            matches.append(word)
            if language == "und":
                language = term.language

        for word in words:
            if word in blocked_words:
                labels["blocked_term"] = 0.95
                matches.append(word)
            if word in self.allow:
                continue
            term = self._lookup(word)
            if term is None and len(word) > 4:
                term = self._strip_suffix(word)
            if term is not None:
                hit(term, word)
        if len(words) > 1:
            heads = self.phrase_heads
            for i, word in enumerate(words):
                longest = heads.get(word)
                if longest is None:
                    continue
                for n in range(2, min(longest, len(words) - i) + 1):
                    key = " ".join(words[i : i + n])
                    phrase = self.phrases.get(key)
                    if phrase is not None:
                        hit(phrase, key)
            for blocked_phrase in blocked_phrases:
                seq, n = list(blocked_phrase), len(blocked_phrase)
                if any(words[i : i + n] == seq for i in range(len(words) - n + 1)):
                    labels["blocked_term"] = 0.95
                    matches.append(" ".join(seq))
        local = self.region_words.get(rules.name)
        if local:
            joined = " ".join(words)
            for key, term in local.items():
                if key in words or (" " in key and f" {key} " in f" {joined} "):
                    hit(term, key)
        abusive = sum(1 for m in matches if m not in blocked_words)
        if abusive >= 2 and "profanity" in labels:
            labels["profanity"] = max(labels["profanity"], 0.92)
        skip = rules.skip
        if "spam" not in skip:
            spam = 0.0
            if _URL.search(text):
                spam = max(spam, 0.7)
            if _REPEAT.search(text):
                spam = max(spam, 0.5)  # reported, but below the default hold threshold
            if len(words) >= 6 and len(set(words)) <= len(words) // 4:
                spam = max(spam, 0.8)
            if spam:
                labels["spam"] = conf.get("spam", spam) if spam >= 0.7 else spam
        if "pii" not in skip:
            if _EMAIL.search(text):
                labels["pii"] = conf.get("pii", 0.7)
            else:
                for m in _PHONE.finditer(text):
                    if sum(c.isdigit() for c in m.group()) >= 9:
                        labels["pii"] = conf.get("pii", 0.7)
                        break
        for label in skip & labels.keys():
            del labels[label]
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
