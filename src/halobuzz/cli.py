"""The `halobuzz` command: one program, started in different roles."""

from __future__ import annotations

import asyncio
import gc
import sys

import click

from halobuzz.config import Settings, get_settings


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise click.ClickException(f"configuration is not valid:\n{exc}") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """HaloBuzz: self-hostable live streaming — video and radio, chat, follows, gifts, moderation."""


@main.command()
@click.option("--host", default=None, help="Interface to bind (default HALOBUZZ_HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default HALOBUZZ_PORT or 5010).")
@click.option("--migrate/--no-migrate", default=True, show_default=True, help="Apply migrations before serving.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log every request.")
def serve(host: str | None, port: int | None, migrate: bool, access_log: bool) -> None:
    """Run everything in one process (the embedded default: SQLite, in-process broker, local files)."""
    import uvicorn

    from halobuzz.app import create_app
    from halobuzz.core.observability import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    if migrate:
        _migrate(settings)
    if not access_log:
        settings.http.access_log = False
    app = create_app(settings)
    # Objects made at start-up live for the whole process: keep them out of every collection, and
    # collect the youngest generation less often (a request allocates many short-lived objects).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=settings.http.trust_forwarded_for,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


def _migrate(settings: Settings, revision: str = "head") -> None:
    from halobuzz.core import migrate as migrations

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    click.echo(f"migrating {settings.resolved_database_url.split('@')[-1]} to {revision} …", err=True)
    migrations.upgrade(settings.resolved_database_url, revision)
    click.echo("database schema is up to date", err=True)


@main.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def migrate(revision: str) -> None:
    """Create or upgrade the database schema (Alembic)."""
    _migrate(_settings(), revision)


@main.command()
@click.option("--demo/--no-demo", default=True, show_default=True, help="Add demo users, follows and streams.")
def seed(demo: bool) -> None:
    """Add the base data (categories) and, unless --no-demo, demo users, follows and streams."""
    from halobuzz import seed as seeding

    settings = _settings()
    if demo and settings.env == "production":
        raise click.ClickException("refusing to add demo accounts with HALOBUZZ_ENV=production; use --no-demo")
    for line in asyncio.run(seeding.run(settings, demo=demo)):
        click.echo(line)


@main.command()
@click.option("--username", prompt=True, help="Username of the admin.")
@click.option("--email", prompt=True, help="Email address of the admin.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="Password (prompted).")
def createadmin(username: str, email: str, password: str) -> None:
    """Create an admin account, or give an existing account the admin role."""
    from halobuzz import seed as seeding

    try:
        message = asyncio.run(seeding.create_admin(_settings(), username=username, email=email, password=password))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(message)


if __name__ == "__main__":
    sys.exit(main())
