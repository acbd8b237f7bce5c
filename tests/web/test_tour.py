"""Every page renders for the people who may see it, in every language, without a server error."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import pytest

from halobuzz.web.i18n import LANGUAGES
from tests.conftest import client_for
from tests.web.conftest import TOTP_SECRET
from tests.web.world import build_world, pages

# Texts with a {placeholder} left unfilled; scripts' templates (data-t-*) and charts of route
# templates (/streams/{stream_id}) are meant to hold braces.
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
UNSHOWN = re.compile(r"<(template|pre|code|figure)[^>]*>.*?</\1>|data-t-[a-z-]+=\"[^\"]*\"", re.S)


@pytest.fixture
async def world(app: Any, make_user: Any, make_admin: Any) -> Any:
    return await build_world(app, make_user, make_admin)


async def test_every_page_renders_in_every_language(app, world, browser_for):
    clients = {
        "anonymous": client_for(app),
        "viewer": await browser_for(world.viewer),
        "troll": await browser_for(world.troll),
        "creator": await browser_for(world.creator),
        "moderator": await browser_for(world.moderator),
        "admin": await browser_for(world.admin, pyotp.TOTP(TOTP_SECRET).now()),
    }
    try:
        for lang in LANGUAGES:
            for who, path in pages(world):
                sep = "&" if "?" in path else "?"
                r = await clients[who].get(f"{path}{sep}lang={lang}")
                assert r.status_code == 200, (who, path, lang, r.status_code, r.text[-2000:])
                assert f'<html lang="{lang}"' in r.text, (who, path)
                shown = UNSHOWN.sub("", r.text)
                assert not PLACEHOLDER.search(shown), (who, path, lang, PLACEHOLDER.search(shown))
    finally:
        await clients["anonymous"].aclose()
