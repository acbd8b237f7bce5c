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
        # Engine.IO's own heartbeat (ping every 25 s, pong within 20 s) finds dead peers; a second,
        # websocket-level ping from uvicorn every 20 s only doubled the keep-alive work.
        ws_ping_interval=None,
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


def _run_background(*, relay: bool, scheduler: bool) -> None:
    from halobuzz.core.observability import configure_logging
    from halobuzz.core.runtime import Runtime
    from halobuzz.jobs import runner

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    runtime = Runtime.build(settings)
    from contextlib import suppress

    with suppress(KeyboardInterrupt):
        asyncio.run(runner.serve_forever(runtime, relay=relay, scheduler=scheduler))


@main.command()
def worker() -> None:
    """Deliver domain events to consumers and webhooks (the outbox relay), as its own process.

    Use with BROKER_URL set, when `serve` does not run the relay itself; any number may run.
    """
    _run_background(relay=True, scheduler=False)


@main.command()
def scheduler() -> None:
    """Fire the scheduled jobs (JOBS_TIMEZONE) as their own process; two may run, each slot fires once."""
    _run_background(relay=False, scheduler=True)


if __name__ == "__main__":
    sys.exit(main())


@main.command("ai-engine")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=None, type=int, help="Port (default MODERATION_ENGINE_PORT or 5020).")
def ai_engine(host: str, port: int | None) -> None:
    """Run the AI engine (moderation, sentiment, tags, engagement) as its own HTTP service with signed requests."""
    import uvicorn

    from halobuzz.ai.engine import create_engine_app
    from halobuzz.ai.service import rules_from_settings

    settings = _settings()
    app = create_engine_app(
        settings.ai_engine_secret.get_secret_value(),
        region=settings.moderation.region,
        window_seconds=settings.moderation.engine_replay_window_seconds,
        rules=rules_from_settings(settings.moderation),
    )
    uvicorn.run(app, host=host, port=port or settings.moderation.engine_port, log_level="warning")


@main.group(invoke_without_command=True)
@click.pass_context
def media(ctx: click.Context) -> None:
    """Media plane ingest: nginx-rtmp (or, without nginx, ffmpeg listeners behind a key check) and
    SRT; keys are checked by the API's callbacks (MEDIA_API_BASE_URL). Transcoders run in the API."""
    if ctx.invoked_subcommand is not None:
        return
    from halobuzz.core.observability import configure_logging
    from halobuzz.media import ingest

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    mode = ingest.choose_mode(settings)
    srt = f", SRT on :{settings.media.srt_port}" if settings.media.srt_port else ""
    click.echo(
        f"media ingest ({mode}): RTMP on :{settings.media.rtmp_port}{srt}; callbacks to {settings.media.api_base_url}",
        err=True,
    )
    try:
        ingest.run(settings)
    except (RuntimeError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


@media.command("nginx-conf")
@click.option("--dir", "work_dir", default=None, help="Directory for pid, logs and temp files.")
def media_nginx_conf(work_dir: str | None) -> None:
    """Print the generated nginx.conf (RTMP ingest with the API's on_publish callbacks)."""
    from pathlib import Path

    from halobuzz.media.nginx import render_conf

    settings = _settings()
    work = Path(work_dir) if work_dir else settings.data_dir / "media" / "nginx"
    click.echo(render_conf(settings, work), nl=False)


@main.command("kyc-reencrypt")
@click.option("--batch-size", default=100, show_default=True, help="Documents per transaction.")
def kyc_reencrypt(batch_size: int) -> None:
    """Re-encrypt KYC documents sealed with older keys under KYC_ACTIVE_KEY_ID (run after adding a key)."""
    from halobuzz.core.runtime import Runtime
    from halobuzz.kyc import service as kyc_service

    settings = _settings()

    async def run() -> kyc_service.ReencryptResult:
        runtime = Runtime.build(settings)
        moved = 0

        def progress(step: kyc_service.ReencryptResult) -> None:
            nonlocal moved
            moved += step.reencrypted
            click.echo(f"re-encrypted {moved} documents; {step.remaining} still under older keys", err=True)

        try:
            return await kyc_service.reencrypt_all(runtime=runtime, batch_size=batch_size, progress=progress)
        finally:
            await runtime.close()

    try:
        result = asyncio.run(run())
    except Exception as exc:
        raise click.ClickException(f"{exc} (check DATABASE_URL, storage and KYC_ENCRYPTION_KEYS)") from exc
    click.echo(
        f"done: {result.reencrypted} re-encrypted under key {result.active_key_id!r}, {result.failed} failed, "
        f"{result.remaining} left under older keys"
    )
    if result.remaining:
        raise click.ClickException(
            "some documents could not be re-encrypted (see the log: a missing key or file); keep their old key configured"
        )
