"""The `halobuzz` command: migrate, seed (demo and --no-demo, idempotent), createadmin, --help."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from halobuzz.accounts.models import Follow, User
from halobuzz.cli import main
from halobuzz.config import get_settings
from halobuzz.streams.models import Category, Stream
from tests.core.test_migrations import _fresh_database


def _invoke(args: list[str], env: dict[str, str]):
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    finally:
        get_settings.cache_clear()


async def _counts(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        out = {}
        for name, table in (("users", User), ("follows", Follow), ("categories", Category), ("streams", Stream)):
            out[name] = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
        admins = (await conn.execute(select(User.username, User.roles))).all()
    await engine.dispose()
    out["admins"] = sum(1 for _, roles in admins if "admin" in roles)
    return out


async def test_every_command_has_help():
    for command in ([], ["serve"], ["migrate"], ["seed"], ["createadmin"]):
        result = await asyncio.to_thread(CliRunner().invoke, main, [*command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output


async def test_migrate_seed_and_createadmin(tmp_path):
    url, drop = await _fresh_database(tmp_path)
    env = {"DATABASE_URL": url, "HALOBUZZ_DATA_DIR": str(tmp_path / "var"), "HALOBUZZ_ENV": "development"}
    try:
        assert (await asyncio.to_thread(_invoke, ["migrate"], env)).exit_code == 0
        empty = await asyncio.to_thread(_invoke, ["seed", "--no-demo"], env)
        assert empty.exit_code == 0 and "categories: 10 added" in empty.output
        assert (await _counts(url))["users"] == 0

        demo = await asyncio.to_thread(_invoke, ["seed"], env)
        assert demo.exit_code == 0, demo.output
        counts = await _counts(url)
        assert counts["users"] == 24 and counts["admins"] == 1 and counts["streams"] == 3
        assert counts["follows"] >= 20 and counts["categories"] == 10
        again = await asyncio.to_thread(_invoke, ["seed"], env)
        assert again.exit_code == 0 and await _counts(url) == counts

        refused = await asyncio.to_thread(
            _invoke,
            ["seed"],
            {**env, "HALOBUZZ_ENV": "production", "AUTH_JWT_SECRET": "s" * 40, "AI_ENGINE_SECRET": "a" * 40},
        )
        assert refused.exit_code != 0 and "--no-demo" in refused.output

        weak = await asyncio.to_thread(
            _invoke,
            ["createadmin", "--username", "boss", "--email", "boss@example.com", "--password", "password123"],
            env,
        )
        assert weak.exit_code != 0 and "common" in weak.output
        made = await asyncio.to_thread(
            _invoke,
            ["createadmin", "--username", "boss", "--email", "boss@example.com", "--password", "A-good-long-one-77"],
            env,
        )
        assert made.exit_code == 0 and "admin boss created" in made.output
        promoted = await asyncio.to_thread(
            _invoke,
            ["createadmin", "--username", "viewer1", "--email", "x@example.com", "--password", "A-good-long-one-77"],
            env,
        )
        assert promoted.exit_code == 0 and "viewer1 is now an admin" in promoted.output
        assert (await _counts(url))["admins"] == 3
    finally:
        if drop:
            await drop()
