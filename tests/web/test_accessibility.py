"""Accessibility of every page: each form control has a label, images have alternative text,
buttons and links have names, one main heading, a skip link, and text colours that keep at least
4.5:1 contrast (WCAG AA) on their backgrounds."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyotp
import pytest

from halobuzz.web.pages import STATIC_DIR
from tests.conftest import client_for
from tests.web.conftest import TOTP_SECRET
from tests.web.world import build_world, pages

UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


class Audit(HTMLParser):
    """Collects the problems of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.label_for: set[str] = set()
        self.controls: list[tuple[str, dict[str, str], bool]] = []
        self.label_depth = 0
        self.h1 = 0
        self.skip = False
        self.open_named: list[tuple[str, dict[str, str], list[str]]] = []
        self.in_template = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "template":
            self.in_template += 1
        if self.in_template:
            return
        if tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.label_for.add(a["for"])
        elif tag in ("input", "select", "textarea") and a.get("type", "text") not in UNLABELLED_TYPES:
            self.controls.append((tag, a, self.label_depth > 0))
        elif tag == "img" and "alt" not in a:
            self.problems.append(f"img without alt: {a.get('src')}")
        elif tag == "h1":
            self.h1 += 1
        elif tag == "a" and a.get("class") == "skip" and a.get("href") == "#main":
            self.skip = True
        if tag in ("button", "a"):
            self.open_named.append((tag, a, []))

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self.in_template -= 1
            return
        if self.in_template:
            return
        if tag == "label":
            self.label_depth -= 1
        if tag in ("button", "a") and self.open_named:
            opened, a, text = self.open_named.pop()
            if not "".join(text).strip() and not a.get("aria-label"):
                self.problems.append(f"{opened} without a name: {a}")

    def handle_data(self, data: str) -> None:
        for _, _, text in self.open_named:
            text.append(data)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def finish(self) -> list[str]:
        for tag, a, wrapped in self.controls:
            named = wrapped or a.get("id") in self.label_for or a.get("aria-label") or a.get("aria-labelledby")
            if not named:
                self.problems.append(f"{tag} without a label: {a.get('name')}")
        if self.h1 != 1:
            self.problems.append(f"{self.h1} h1 headings")
        if not self.skip:
            self.problems.append("no skip link")
        return self.problems


@pytest.fixture
async def world(app: Any, make_user: Any, make_admin: Any) -> Any:
    return await build_world(app, make_user, make_admin)


async def test_every_page_labels_its_controls_and_names_its_buttons(app, world, browser_for):
    clients = {
        "anonymous": client_for(app),
        "viewer": await browser_for(world.viewer),
        "troll": await browser_for(world.troll),
        "creator": await browser_for(world.creator),
        "moderator": await browser_for(world.moderator),
        "admin": await browser_for(world.admin, pyotp.TOTP(TOTP_SECRET).now()),
    }
    extra = [("creator", "/studio/streams/" + world.stream_id + "?lang=ur"), ("viewer", "/account/2fa?required=admin")]
    try:
        for who, path in [*pages(world), *extra]:
            r = await clients[who].get(path)
            assert r.status_code == 200, (who, path)
            audit = Audit()
            audit.feed(r.text)
            assert audit.finish() == [], (who, path)
            assert re.search(r'<html lang="[a-z]{2}" dir="(ltr|rtl)">', r.text), path
            assert re.search(r"<title>[^<]+</title>", r.text), path
    finally:
        await clients["anonymous"].aclose()


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_text_colours_have_enough_contrast():
    css = Path(STATIC_DIR / "css" / "app.css").read_text()
    colours = dict(re.findall(r"--([a-z0-9-]+):\s*(#[0-9a-fA-F]{3,6})", css))
    pairs = [
        ("text", "bg"), ("text", "panel"), ("muted", "bg"), ("muted", "panel"), ("link", "bg"), ("link", "panel"),
        ("on-accent", "accent"), ("on-danger", "danger"), ("on-secondary", "secondary"), ("ok", "ok-bg"),
        ("err", "err-bg"), ("ok", "panel"), ("err", "panel"),
    ]  # fmt: skip
    for fg, bg in pairs:
        ratio = contrast(colours[fg], colours[bg])
        assert ratio >= 4.5, (fg, bg, round(ratio, 2))
    # Fixed colours used outside the variables: badges, focus ring against the page.
    assert contrast("#ffffff", "#b71c1c") >= 4.5 and contrast("#ffffff", "#283593") >= 4.5
    assert contrast("#ffd54f", colours["bg"]) >= 3.0  # non-text contrast of the focus outline
    assert contrast("#c5c7e0", "#1b1d36") >= 4.5  # chart labels


def test_focus_is_always_visible():
    css = Path(STATIC_DIR / "css" / "app.css").read_text()
    rule = re.search(r"([^{}]*:focus-visible[^{}]*)\{([^}]*)\}", css)
    assert rule and "outline: 3px solid" in rule.group(2)
    for element in ("a", "button", "input", "select", "textarea", "summary"):
        assert f"{element}:focus-visible" in rule.group(1), element
    assert "outline: none" not in css and "outline:none" not in css


def test_the_audit_finds_problems():
    audit = Audit()
    audit.feed(
        '<a class="skip" href="#main">Skip</a><h1>x</h1><input name="q"><label>Ok <input name="w"></label>'
        '<label for="z">Z</label><select id="z"></select><img src="/a.png"><button></button><a href="/"></a>'
        '<template><input name="inert"></template>'
    )
    assert audit.finish() == [
        "img without alt: /a.png",
        "button without a name: {}",
        "a without a name: {'href': '/'}",
        "input without a label: q",
    ]
