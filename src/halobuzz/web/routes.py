"""The web app's routes: server-rendered pages over the HTTP API (called in process).

Handlers live by area — ``viewer`` (live listing, streams, profiles, reports), ``signin``,
``wallet``, ``account``, ``studio`` and ``admin``; ``pages`` holds what they share. Every unsafe
request carries a CSRF token; every form is validated by the API and its error message is shown
on the page. Pages work without JavaScript where they can (lists, forms); the scripts in
``static/js`` add live chat, gifts, the video player and live numbers.
"""

from __future__ import annotations

from fastapi import APIRouter

from halobuzz.web import account, admin, signin, studio, viewer, wallet
from halobuzz.web.pages import STATIC_DIR

router = APIRouter(include_in_schema=False)
for area in (signin, viewer, wallet, account, studio, admin):
    router.include_router(area.router)

__all__ = ["STATIC_DIR", "router"]
