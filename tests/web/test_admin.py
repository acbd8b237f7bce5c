"""The admin panel over HTTP: two-factor authentication required for admins, what moderators may
see, users (search, roles, suspend, ban, reinstate, creator approval, KYC), the moderation queue
with context and appeals, payments and refunds, reconciliation, payouts, flags, the catalog,
categories, webhooks, jobs and dead letters, the audit log, and system health."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pyotp
import pytest

from halobuzz.app import HaloBuzzApp
from tests.conftest import client_for
from tests.web.conftest import TOTP_SECRET, alert_of, csrf_of
from tests.web.world import World, build_world

API = "/api/v1"


@pytest.fixture
async def world(app: HaloBuzzApp, make_user: Any, make_admin: Any) -> World:
    return await build_world(app, make_user, make_admin)


@pytest.fixture
async def panel(world: World, browser_for: Any) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await browser_for(world.admin, pyotp.TOTP(TOTP_SECRET).now())
    return client


async def _token(c: httpx.AsyncClient, path: str) -> str:
    page = await c.get(path)
    assert page.status_code == 200, (path, page.status_code, page.text[-1000:])
    return csrf_of(page.text)


async def test_admins_need_two_factor_and_moderators_see_their_part(
    app: HaloBuzzApp, make_user: Any, browser_for: Any
) -> None:
    plain_admin = await make_user("no2fa", roles=["admin"])
    web = await browser_for(plain_admin)
    for path in ("/admin", "/admin/users", "/admin/moderation", "/admin/payments"):
        r = await web.get(path)
        assert r.status_code == 303 and r.headers["location"] == "/account/2fa?required=admin", path
    blocked = await web.post(
        "/admin/users/00000000-0000-0000-0000-000000000000/ban", data={"csrf_token": await _token(web, "/account")}
    )
    assert blocked.status_code == 303 and blocked.headers["location"].startswith("/account/2fa")
    setup_page = await web.get("/account/2fa?required=admin")
    assert 'id="twofa-required"' in setup_page.text and 'id="twofa-setup"' in setup_page.text
    assert (await web.get("/admin/health/live.json")).status_code == 403
    # Turning it on opens the panel.
    setup = await web.post("/account/2fa/setup", data={"csrf_token": csrf_of(setup_page.text)})
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', setup.text).group(1)  # type: ignore[union-attr]
    done = await web.post(
        "/account/2fa/confirm", data={"csrf_token": csrf_of(setup.text), "otp": pyotp.TOTP(secret).now()}
    )
    assert 'href="/admin"' in done.text
    assert (await web.get("/admin")).status_code == 200

    moderator = await make_user("justamod", roles=["moderator"])
    mod = await browser_for(moderator)
    assert (await mod.get("/admin")).headers["location"] == "/admin/moderation"
    assert (await mod.get("/admin/users")).status_code == 200
    assert (await mod.get("/admin/moderation")).status_code == 200
    for path in (
        "/admin/payments",
        "/admin/catalog",
        "/admin/audit",
        "/admin/webhooks",
        "/admin/jobs",
        "/admin/payouts",
    ):
        assert (await mod.get(path)).status_code == 403, path
    viewer = await browser_for(await make_user("justaviewer"))
    assert (await viewer.get("/admin/users")).status_code == 403
    assert (await client_for(app).get("/admin")).status_code == 303


async def test_users_search_roles_suspend_reinstate_and_ban(
    world: World, panel: httpx.AsyncClient, browser_for: Any
) -> None:
    found = await panel.get("/admin/users?q=worldt")
    assert found.status_code == 200 and 'data-username="worldtroll"' in found.text and "worldviewer" not in found.text
    creators = await panel.get("/admin/users?role=creator")
    assert 'data-username="worldcreator"' in creators.text and 'data-username="worldtroll"' not in creators.text
    bad = await panel.get("/admin/users?status=sleeping")
    assert bad.status_code == 422 and alert_of(bad.text)

    troll_web = await browser_for(world.troll)
    detail = await panel.get(f"/admin/users/{world.troll.id}")
    assert detail.status_code == 200 and "worldtroll" in detail.text and 'id="user-status">active<' in detail.text
    token = csrf_of(detail.text)
    no_reason = await panel.post(
        f"/admin/users/{world.troll.id}/suspend", data={"csrf_token": token, "hours": "24", "reason": ""}
    )
    assert no_reason.status_code == 422 and "reason" in alert_of(no_reason.text)
    no_hours = await panel.post(
        f"/admin/users/{world.troll.id}/suspend", data={"csrf_token": token, "hours": "x", "reason": "cool off"}
    )
    assert no_hours.status_code == 422
    suspended = await panel.post(
        f"/admin/users/{world.troll.id}/suspend", data={"csrf_token": token, "hours": "24", "reason": "cool off"}
    )
    assert suspended.status_code == 303
    assert (await troll_web.get("/account")).status_code == 303  # signed out at once
    detail = await panel.get(f"/admin/users/{world.troll.id}")
    assert 'id="user-status">suspended<' in detail.text and "cool off" in detail.text
    reinstated = await panel.post(f"/admin/users/{world.troll.id}/reinstate", data={"csrf_token": token})
    assert reinstated.status_code == 303

    roles = await panel.post(
        f"/admin/users/{world.viewer.id}/roles", data={"csrf_token": token, "roles": ["creator", "moderator"]}
    )
    assert roles.status_code == 303
    async with client_for(panel._transport.app) as c:  # type: ignore[attr-defined]
        user = (await c.get(f"{API}/admin/users/{world.viewer.id}", headers=world.admin.headers)).json()
    assert user["roles"] == ["user", "creator", "moderator"]
    own = await panel.post(f"/admin/users/{world.admin.id}/roles", data={"csrf_token": token, "roles": []})
    assert own.status_code in (403, 409, 422) and alert_of(own.text)

    banned = await panel.post(
        f"/admin/users/{world.troll.id}/ban",
        data={"csrf_token": token, "reason": "spam", "back": "/admin/users?q=worldt"},
    )
    assert banned.status_code == 303 and banned.headers["location"] == "/admin/users?q=worldt&notice=done"
    again = await panel.post(f"/admin/users/{world.troll.id}/ban", data={"csrf_token": token, "reason": "spam"})
    assert again.status_code == 409 and "already banned" in alert_of(again.text)
    assert (await panel.post(f"/admin/users/{world.troll.id}/explode", data={"csrf_token": token})).status_code == 404
    assert (await panel.get("/admin/users/not-a-uuid")).status_code == 404


async def test_creator_approval(app_factory: Any, make_user: Any, make_admin: Any, browser_for: Any) -> None:
    strict = await app_factory(auth={"creator_requires_approval": True})
    admin = await make_admin()
    hopeful = await make_user("hopeful")
    async with client_for(strict) as web:
        page = await web.get("/login")
        await web.post(
            "/login",
            data={"csrf_token": csrf_of(page.text), "login": "hopeful", "password": hopeful.password},
        )
        applied = await web.post("/account/creator", data={"csrf_token": await _token(web, "/account")})
        assert applied.status_code == 303 and "notice=creator_applied" in applied.headers["location"]
        assert "waiting for an admin" in (await web.get("/studio")).text
    async with client_for(strict) as staff:
        page = await staff.get("/login")
        await staff.post(
            "/login",
            data={
                "csrf_token": csrf_of(page.text),
                "login": admin.username,
                "password": admin.password,
                "otp": pyotp.TOTP(TOTP_SECRET).now(),
            },
        )
        listed = await staff.get("/admin/users?q=hopeful")
        assert "creator application" in listed.text
        token = await _token(staff, f"/admin/users/{hopeful.id}")
        approved = await staff.post(f"/admin/users/{hopeful.id}/creator", data={"csrf_token": token, "approve": "yes"})
        assert approved.status_code == 303
        twice = await staff.post(f"/admin/users/{hopeful.id}/creator", data={"csrf_token": token, "approve": "yes"})
        assert twice.status_code == 409 and alert_of(twice.text)
        audit = await staff.get(f"/admin/audit?target_id={hopeful.id}")
        assert "admin.creator.approve" in audit.text or "creator" in audit.text


async def test_moderation_case_with_context_decided_and_appeal(
    world: World, panel: httpx.AsyncClient, browser_for: Any
) -> None:
    queue = await panel.get("/admin/moderation")
    assert f'data-case="{world.case_id}"' in queue.text and "it was a joke" in queue.text
    case = await panel.get(f"/admin/moderation/cases/{world.case_id}")
    assert case.status_code == 200
    assert "buy followers at spam.example" in case.text and 'class="target"' in case.text
    assert "namaste" in case.text and "worldviewer" in case.text and "a link" in case.text
    assert 'value="remove_content"' in case.text and 'value="ban"' in case.text
    token = csrf_of(case.text)
    noted = await panel.post(
        f"/admin/moderation/cases/{world.case_id}/note", data={"csrf_token": token, "note": "looks like spam"}
    )
    assert noted.status_code == 303
    no_reason = await panel.post(
        f"/admin/moderation/cases/{world.case_id}/decide",
        data={"csrf_token": token, "decision": "remove_content", "reason": ""},
    )
    assert no_reason.status_code == 422 and "reason" in alert_of(no_reason.text)
    decided = await panel.post(
        f"/admin/moderation/cases/{world.case_id}/decide",
        data={"csrf_token": token, "decision": "remove_content", "reason": "spam link", "duration_days": "7"},
    )
    assert decided.status_code == 303 and decided.headers["location"] == "/admin/moderation?notice=decided"
    async with client_for(panel._transport.app) as c:  # type: ignore[attr-defined]
        history = (await c.get(f"{API}/streams/{world.stream_id}/chat")).json()["items"]
    assert "buy followers at spam.example" not in [m["text"] for m in history]
    closed = await panel.get(f"/admin/moderation/cases/{world.case_id}")
    assert 'id="decide-form"' not in closed.text
    twice = await panel.post(
        f"/admin/moderation/cases/{world.case_id}/decide", data={"csrf_token": token, "decision": "warn", "reason": "x"}
    )
    assert twice.status_code == 409 and alert_of(twice.text)

    # The appeal of the world's warning: the moderator who decided it may not decide the appeal.
    same = await panel.post(
        f"/admin/moderation/appeals/{world.appeal_id}", data={"csrf_token": token, "outcome": "reverse", "reason": "ok"}
    )
    assert same.status_code == 403 and alert_of(same.text)
    moderator_web = await browser_for(world.moderator)
    mod_token = await _token(moderator_web, "/admin/moderation")
    reversed_ = await moderator_web.post(
        f"/admin/moderation/appeals/{world.appeal_id}",
        data={"csrf_token": mod_token, "outcome": "reverse", "reason": "a joke indeed"},
    )
    assert reversed_.status_code == 303
    assert "it was a joke" not in (await moderator_web.get("/admin/moderation")).text
    # Moderators cannot ban from a case; the choice is not offered to them.
    other = await moderator_web.get(f"/admin/moderation/cases/{world.case_id}")
    assert 'value="ban"' not in other.text


async def test_payments_refund_reconciliation_payouts_and_flags(
    world: World, panel: httpx.AsyncClient, browser_for: Any
) -> None:
    payments = await panel.get("/admin/payments")
    assert payments.status_code == 200 and f'data-intent="{world.intent_id}"' in payments.text
    assert 'id="recon-ok"' in payments.text and "The ledger balances" in payments.text
    assert "worldviewer" in (await panel.get("/admin/payments?status=succeeded&provider=sandbox")).text
    assert f'data-intent="{world.intent_id}"' not in (await panel.get("/admin/payments?status=pending")).text
    assert (await panel.get("/admin/payments?status=lost")).status_code == 422
    token = csrf_of(payments.text)
    no_reason = await panel.post(f"/admin/payments/{world.intent_id}/refund", data={"csrf_token": token, "reason": ""})
    assert no_reason.status_code == 422
    refunded = await panel.post(
        f"/admin/payments/{world.intent_id}/refund", data={"csrf_token": token, "reason": "asked nicely"}
    )
    assert refunded.status_code == 303 and refunded.headers["location"] == "/admin/payments?notice=refunded"
    assert f'data-intent="{world.intent_id}"' in (await panel.get("/admin/payments?status=refunded")).text
    reconciled = await panel.post("/admin/payments/reconcile", data={"csrf_token": token})
    assert reconciled.status_code == 303
    report = await panel.get("/admin/reconciliation")
    assert report.status_code == 200 and 'id="provider-totals"' in report.text
    assert 'id="recon-ok" class="notice"' in report.text  # the refund left the ledger balanced

    payouts = await panel.get("/admin/payouts?status=pending")
    assert "worldcreator" in payouts.text and "9800000000" in payouts.text
    rejected = await panel.post(
        f"/admin/payouts/{world.payout_id}/reject", data={"csrf_token": token, "reason": "wrong number"}
    )
    assert rejected.status_code == 303
    assert "wrong number" in (await panel.get("/admin/payouts?status=voided")).text
    again = await panel.post(f"/admin/payouts/{world.payout_id}/approve", data={"csrf_token": token})
    assert again.status_code == 409 and alert_of(again.text)
    creator_web = await browser_for(world.creator)
    assert "rejected · wrong number" in (await creator_web.get("/studio/earnings")).text

    flags = await panel.get("/admin/flags?status=open")
    flag_id = re.search(r'action="/admin/flags/([0-9a-f-]+)/resolve"', flags.text).group(1)  # type: ignore[union-attr]
    assert "purchase_velocity" in flags.text and "worldviewer" in flags.text
    resolved = await panel.post(
        f"/admin/flags/{flag_id}/resolve", data={"csrf_token": token, "resolution": "a real fan"}
    )
    assert resolved.status_code == 303
    assert "a real fan" in (await panel.get("/admin/flags?status=resolved")).text
    twice = await panel.post(f"/admin/flags/{flag_id}/resolve", data={"csrf_token": token})
    assert twice.status_code == 409


async def test_catalog_and_categories(world: World, panel: httpx.AsyncClient) -> None:
    catalog = await panel.get("/admin/catalog")
    token = csrf_of(catalog.text)
    bad = await panel.post(
        "/admin/catalog/packages",
        data={"csrf_token": token, "name": "Festival pack", "coins": "10000", "prices": "NPR=lots"},
    )
    assert bad.status_code == 422 and "prices" in alert_of(bad.text)
    made = await panel.post(
        "/admin/catalog/packages",
        data={
            "csrf_token": token,
            "name": "Festival pack",
            "coins": "10000",
            "bonus_coins": "500",
            "prices": "NPR=150000, usd=1199",
        },
    )
    assert made.status_code == 303
    async with client_for(panel._transport.app) as c:  # type: ignore[attr-defined]
        pack = next(p for p in (await c.get(f"{API}/coin-packages")).json()["items"] if p["name"] == "Festival pack")
        assert pack["prices"] == {"NPR": 150000, "USD": 1199} and pack["bonus_coins"] == 500
        off = await panel.post(
            f"/admin/catalog/packages/{pack['id']}",
            data={"csrf_token": token, "name": "Festival pack", "coins": "10000", "prices": "NPR=150000"},
        )
        assert off.status_code == 303  # the on-sale box unticked
        assert "Festival pack" not in [p["name"] for p in (await c.get(f"{API}/coin-packages")).json()["items"]]
        gift = await panel.post(
            "/admin/catalog/gifts",
            data={
                "csrf_token": token,
                "name": "Lantern",
                "coin_price": "30",
                "rarity": "rare",
                "animation_url": "/static/gifts/star.json",
            },
        )
        assert gift.status_code == 303
        assert "Lantern" in [g["name"] for g in (await c.get(f"{API}/gifts")).json()["items"]]
    wrong = await panel.post(
        "/admin/catalog/gifts", data={"csrf_token": token, "name": "Bad", "coin_price": "0", "rarity": "mythic"}
    )
    assert wrong.status_code == 422 and alert_of(wrong.text)
    assert (await panel.post("/admin/catalog/hats", data={"csrf_token": token})).status_code == 404

    cats = await panel.get("/admin/categories")
    assert "music" in cats.text
    bad_slug = await panel.post("/admin/categories", data={"csrf_token": token, "slug": "Not A Slug", "name": "X"})
    assert bad_slug.status_code == 422 and "slug" in alert_of(bad_slug.text)
    made = await panel.post(
        "/admin/categories", data={"csrf_token": token, "slug": "poetry", "name": "Poetry", "position": "2"}
    )
    assert made.status_code == 303
    renamed = await panel.post(
        "/admin/categories/poetry", data={"csrf_token": token, "action": "save", "name": "Poems", "position": "1"}
    )
    assert renamed.status_code == 303, alert_of(renamed.text)
    assert "Poems" in (await panel.get("/admin/categories")).text
    gone = await panel.post("/admin/categories/poetry", data={"csrf_token": token, "action": "deactivate"})
    assert gone.status_code == 303 and "Poems" not in (await panel.get("/admin/categories")).text
    back = await panel.post("/admin/categories", data={"csrf_token": token, "action": "activate", "slug": "poetry"})
    assert back.status_code == 303, alert_of(back.text)
    assert "Poems" in (await panel.get("/admin/categories")).text
    missing = await panel.post("/admin/categories", data={"csrf_token": token, "action": "activate", "slug": "nope"})
    assert missing.status_code == 404 and alert_of(missing.text)


async def test_webhooks_jobs_audit_and_health(world: World, panel: httpx.AsyncClient) -> None:
    hooks = await panel.get("/admin/webhooks")
    assert "http://127.0.0.1:9/hook" in hooks.text
    token = csrf_of(hooks.text)
    bad = await panel.post(
        "/admin/webhooks",
        data={"csrf_token": token, "url": "ftp://x", "secret": "s" * 20, "event_types": "stream.live"},
    )
    assert bad.status_code == 422 and alert_of(bad.text) and 'value="ftp://x"' in bad.text
    unknown = await panel.post(
        "/admin/webhooks",
        data={"csrf_token": token, "url": "http://127.0.0.1:9/x", "secret": "s" * 20, "event_types": "nope.event"},
    )
    assert unknown.status_code == 422 and "event" in alert_of(unknown.text)
    made = await panel.post(
        "/admin/webhooks",
        data={
            "csrf_token": token,
            "url": "http://127.0.0.1:9/gifts",
            "secret": "g" * 20,
            "event_types": "gift.sent, stream.live",
        },
    )
    assert made.status_code == 303
    deliveries = await panel.get(f"/admin/webhooks?endpoint={world.webhook_id}")
    assert 'id="deliveries"' in deliveries.text
    deleted = await panel.post(f"/admin/webhooks/{world.webhook_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303 and "127.0.0.1:9/hook" not in (await panel.get("/admin/webhooks")).text

    jobs = await panel.get("/admin/jobs")
    assert "halobuzz.jobs.analytics:daily_report" in jobs.text and "database went away" in jobs.text
    retried = await panel.post(f"/admin/jobs/dead-letter/{world.dead_id}/retry", data={"csrf_token": token})
    assert retried.status_code == 303 and "retried" in (await panel.get("/admin/jobs")).text
    twice = await panel.post(f"/admin/jobs/dead-letter/{world.dead_id}/retry", data={"csrf_token": token})
    assert twice.status_code == 409 and alert_of(twice.text)

    audit = await panel.get("/admin/audit")
    assert "moderation.warn" in audit.text and "worldadmin" in audit.text
    filtered = await panel.get("/admin/audit?action=moderation.warn")
    assert "moderation.warn" in filtered.text and "moderation.claim" not in filtered.text
    assert (await panel.get("/admin/audit?actor_id=nope")).status_code == 422

    overview = await panel.get("/admin")
    assert overview.status_code == 200 and 'id="readiness" class="notice"' in overview.text
    for chart in ("chart-status", "chart-latency", "chart-routes", "daily-new_users"):
        assert f'id="{chart}"' in overview.text, chart
    assert re.search(r'<rect x="110" y="\d+" width="[1-9]', overview.text), "the status chart draws bars"
    live = (await panel.get("/admin/health/live.json")).json()
    assert set(live) == {"at", "requests", "errors", "chat_messages", "connections"} and live["requests"] > 0
