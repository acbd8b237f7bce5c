"""Sentiment of short texts: VADER for English; a small lexicon with negation for Nepali, Hindi and
Urdu (native scripts and romanized). Scores are VADER-style ``compound`` values in [-1, 1];
``label`` is positive (≥ 0.05), negative (≤ -0.05) or neutral.

The language is guessed cheaply: Devanagari is Nepali when it carries Nepali markers (छ, हो, छैन …)
and Hindi otherwise; Perso-Arabic script is Urdu; romanized text is Nepali, Hindi or Urdu when it
carries enough of their common words, else English.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_WORD = re.compile(r"[^\W_]+(?:[\u0900-\u097f\u0610-\u061a\u064b-\u065f\u0670]+[^\W_]*)*")

# Valence of words (VADER's scale: about -4 .. +4), per language family; romanized forms included.
LEXICON: dict[str, dict[str, float]] = {
    "ne": {
        "राम्रो": 2.0,
        "रमाइलो": 2.2,
        "धन्यवाद": 1.8,
        "माया": 2.2,
        "खुसी": 2.3,
        "कमाल": 2.6,
        "मज्जा": 2.2,
        "उत्कृष्ट": 3.0,
        "सुन्दर": 2.3,
        "नराम्रो": -2.0,
        "दिक्क": -2.0,
        "झर्को": -2.0,
        "बेकार": -2.3,
        "दुःख": -2.0,
        "रिस": -1.8,
        "बोरिङ": -1.8,
        "घिन": -2.5,
        "ramro": 2.0,
        "ramailo": 2.2,
        "dhanyabad": 1.8,
        "dhanyawad": 1.8,
        "maya": 2.2,
        "khusi": 2.3,
        "kamal": 2.6,
        "majja": 2.2,
        "sundar": 2.3,
        "mitho": 2.0,
        "jabbar": 2.4,
        "naramro": -2.0,
        "dikka": -2.0,
        "jharko": -2.0,
        "bekar": -2.3,
        "dukha": -2.0,
        "ris": -1.5,
        "boring": -1.8,
        "ghin": -2.5,
        "jhyau": -2.0,
        "jhyaau": -2.0,
    },
    "hi": {
        "अच्छा": 1.9,
        "अच्छी": 1.9,
        "बढ़िया": 2.4,
        "बढिया": 2.4,
        "शानदार": 2.8,
        "प्यार": 2.5,
        "मज़ा": 2.1,
        "मजा": 2.1,
        "धन्यवाद": 1.8,
        "खुश": 2.3,
        "कमाल": 2.6,
        "बुरा": -2.1,
        "बुरी": -2.1,
        "बेकार": -2.3,
        "बकवास": -2.5,
        "उबाऊ": -1.8,
        "दुख": -2.0,
        "गुस्सा": -2.0,
        "घटिया": -2.6,
        "accha": 1.9,
        "achha": 1.9,
        "acha": 1.9,
        "achhi": 1.9,
        "achi": 1.9,
        "badhiya": 2.4,
        "shandar": 2.8,
        "shaandar": 2.8,
        "pyaar": 2.5,
        "pyar": 2.5,
        "maza": 2.1,
        "mazaa": 2.1,
        "dhanyavaad": 1.8,
        "khush": 2.3,
        "kamaal": 2.6,
        "bura": -2.1,
        "buri": -2.1,
        "bakwas": -2.5,
        "bakwaas": -2.5,
        "ubaau": -1.8,
        "gussa": -2.0,
        "ghatiya": -2.6,
        "bekaar": -2.3,
    },
    "ur": {
        "اچھا": 1.9,
        "اچھی": 1.9,
        "زبردست": 2.8,
        "شاندار": 2.8,
        "پیار": 2.5,
        "مزہ": 2.1,
        "شکریہ": 1.8,
        "خوش": 2.3,
        "کمال": 2.6,
        "برا": -2.1,
        "بری": -2.1,
        "بیکار": -2.3,
        "بکواس": -2.5,
        "غصہ": -2.0,
        "گھٹیا": -2.6,
        "دکھ": -2.0,
        "zabardast": 2.8,
        "shukriya": 1.8,
        "bohat": 0.0,
        "behtareen": 2.8,
        "bakwas": -2.5,
        "bekar": -2.3,
        "ghatiya": -2.6,
        "gussa": -2.0,
        "khush": 2.3,
        "pyaar": 2.5,
        "maza": 2.1,
        "kamal": 2.6,
        "acha": 1.9,
        "achi": 1.9,
        "bura": -2.1,
    },
}
NEGATIONS = frozenset(
    {
        "छैन",
        "होइन",
        "हैन",
        "नहीं",
        "नही",
        "मत",
        "न",
        "نہیں",
        "نا",
        "مت",
        "chaina",
        "chhaina",
        "hoina",
        "haina",
        "nahi",
        "nahin",
        "nai",
        "mat",
        "na",
        "nhi",
    }
)
INTENSIFIERS = frozenset({"धेरै", "एकदम", "बहुत", "बहोत", "بہت", "dherai", "ekdam", "bahut", "bohat", "bahot", "bohot"})
NE_MARKERS = frozenset({"छ", "छु", "छन्", "हो", "छैन", "भयो", "गर्नुहोस्", "तपाईं", "मा", "लाई", "को"})
ROMAN_MARKERS: dict[str, frozenset[str]] = {
    "ne": frozenset(
        {
            "cha",
            "chha",
            "chu",
            "chhu",
            "ho",
            "bhayo",
            "garnus",
            "tapai",
            "malai",
            "hajur",
            "dai",
            "didi",
            "ramro",
            "chaina",
            "kasto",
            "kati",
            "herdai",
            "bata",
        }
    ),
    "hi": frozenset(
        {
            "hai",
            "hain",
            "nahi",
            "kya",
            "bahut",
            "aap",
            "mujhe",
            "raha",
            "rahi",
            "bhai",
            "yaar",
            "kaise",
            "accha",
            "achha",
            "dhanyavaad",
        }
    ),
    "ur": frozenset(
        {
            "hai",
            "hain",
            "nahi",
            "kya",
            "bohat",
            "aap",
            "mujhe",
            "shukriya",
            "zabardast",
            "janab",
            "behtareen",
            "inshallah",
            "mashallah",
        }
    ),
}
_URDU_ONLY = frozenset({"bohat", "shukriya", "zabardast", "janab", "behtareen", "inshallah", "mashallah"})


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: str  # positive | negative | neutral
    score: float  # compound, -1 .. 1
    language: str

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(self.score, 4), "language": self.language}


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def detect_language(text: str, words: list[str] | None = None) -> str:
    """en, ne, hi or ur (a cheap guess; see the module docstring)."""
    words = words if words is not None else _words(text)
    for ch in text:
        o = ord(ch)
        if 0x0900 <= o <= 0x097F:
            return "ne" if NE_MARKERS & set(words) else "hi"
        if 0x0600 <= o <= 0x06FF:
            return "ur"
    present = set(words)
    scores = {lang: len(markers & present) for lang, markers in ROMAN_MARKERS.items()}
    best = max(scores, key=lambda k: scores[k])
    if scores[best] == 0:
        return "en"
    if best in ("hi", "ur") and present & _URDU_ONLY:
        return "ur"
    return best


def _label(score: float) -> str:
    return "positive" if score >= 0.05 else "negative" if score <= -0.05 else "neutral"


def _lexicon_score(words: list[str], language: str) -> float:
    table = LEXICON[language]
    total = 0.0
    for i, word in enumerate(words):
        value = table.get(word)
        if value is None:
            continue
        window = words[max(0, i - 2) : i + 3]  # "ramro chaina", "nahi accha", "accha nahi"
        if any(w in NEGATIONS for w in window):
            value *= -0.74  # VADER's negation factor
        if i > 0 and words[i - 1] in INTENSIFIERS:
            value += 0.293 if value > 0 else -0.293
        total += value
    # VADER's normalisation of a sum of valences to -1 .. 1.
    return total / math.sqrt(total * total + 15) if total else 0.0


def analyze(text: str) -> Sentiment:
    """The sentiment of ``text`` (a chat message, a comment, a title)."""
    words = _words(text)
    language = detect_language(text, words)
    score = float(_vader().polarity_scores(text)["compound"]) if language == "en" else _lexicon_score(words, language)
    return Sentiment(_label(score), score, language)
