"""Batched writes of chat messages: one INSERT per batch instead of one transaction per message.

Messages are delivered first and written within ``flush_interval_ms`` (or as soon as
``flush_max_rows`` wait). Inserts ignore ids that already exist, so a message deleted before its
batch was written (the deletion writes the row itself) stays deleted. A batch that fails (its
stream was deleted meanwhile) is retried row by row so one bad row cannot lose the others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import structlog
from sqlalchemy.dialects import postgresql, sqlite

from halobuzz.chat.models import ChatMessage
from halobuzz.core.db import Database
from halobuzz.core.tasks import cancel_and_wait

log = structlog.get_logger(__name__)


class ChatWriter:
    def __init__(self, db: Database, *, flush_interval_ms: int = 50, max_rows: int = 500) -> None:
        self.db = db
        self.interval = flush_interval_ms / 1000
        self.max_rows = max_rows
        self._pending: list[dict[str, Any]] = []
        self._first_at = 0.0
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def add(self, row: dict[str, Any]) -> None:
        """Queue a ``chat_message`` row (column name → value) for the next batch."""
        if not self._pending:
            self._first_at = time.monotonic()
            self._wake.set()
        self._pending.append(row)
        if len(self._pending) >= self.max_rows:
            self._full.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="chat-writer")

    async def close(self) -> None:
        """Stop the background loop and write whatever is still pending."""
        await cancel_and_wait([self._task])
        self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            delay = self._first_at + self.interval - time.monotonic()
            if delay > 0:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), timeout=delay)
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the loop alive; the rows were logged by flush
                log.exception("chat_writer_flush_failed")

    async def flush(self) -> None:
        """Write every pending row now."""
        async with self._lock:
            while self._pending:
                batch = self._pending[: self.max_rows]
                del self._pending[: self.max_rows]
                await self._write(batch)
            self._wake.clear()
            self._full.clear()

    def _insert(self) -> Any:
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        return dialect.insert(ChatMessage).on_conflict_do_nothing(index_elements=["id"])

    async def _write(self, rows: Sequence[dict[str, Any]]) -> None:
        try:
            async with self.db.session() as session:
                await session.execute(self._insert(), list(rows))
            return
        except Exception as exc:
            if len(rows) == 1:
                log.warning("chat_message_dropped", message_id=str(rows[0]["id"]), error=str(exc))
                return
        for row in rows:
            await self._write([row])
