"""The web app's routes: server-rendered pages over the HTTP API (called in process).

Handlers live by area — ``viewer`` (live listing, streams, profiles, reports), ``signin``,
``wallet``, ``account``, ``safety`` (KYC, blocked terms, appeals, privacy), ``inbox``
(notifications, web push), ``studio``, ``admin``, ``admin_safety`` (KYC review, image blocklist),
``perks`` (OG tiers, the daily bonus) and ``admin_perks`` (festivals, OG tiers); ``pages`` holds
what they share. Every unsafe
request carries a CSRF token; every form is validated by the API and its error message is shown
on the page. Pages work without JavaScript where they can (lists, forms); the scripts in
``static/js`` add live chat, gifts, the video player and live numbers.
"""

from __future__ import annotations

from fastapi import APIRouter

from halobuzz.web import (
    account,
    admin,
    admin_perks,
    admin_safety,
    inbox,
    perks,
    radio,
    safety,
    signin,
    studio,
    viewer,
    wallet,
)
from halobuzz.web.pages import STATIC_DIR

router = APIRouter(include_in_schema=False)
for area in (signin, viewer, radio, wallet, perks, account, safety, inbox, studio, admin, admin_safety, admin_perks):
    router.include_router(area.router)

__all__ = ["STATIC_DIR", "router"]
