"""Routes: /admin/jobs (the schedule, dead letters) and /admin/reports/daily. Admins only."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from halobuzz.accounts.deps import AdminUser
from halobuzz.core.deps import PageDep, RuntimeDep, SessionDep
from halobuzz.core.errors import NotFound
from halobuzz.core.pagination import Page
from halobuzz.jobs import analytics, schedule, service

router = APIRouter(prefix="/admin", tags=["admin"])


class JobRunOut(BaseModel):
    scheduled_for: datetime
    status: str
    started_at: datetime
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None


class JobOut(BaseModel):
    job: str
    schedule: str
    timezone: str
    last_run: JobRunOut | None


class DeadLetterOut(BaseModel):
    id: uuid.UUID
    kind: str
    name: str
    event_id: uuid.UUID | None
    payload: dict[str, Any]
    attempts: int
    error: str
    failed_at: datetime
    retried_at: datetime | None


class DailyReportOut(BaseModel):
    date: date
    data: dict[str, Any]
    created_at: datetime


@router.get("/jobs", response_model=list[JobOut])
async def list_jobs(runtime: RuntimeDep, _admin: AdminUser) -> list[dict[str, Any]]:
    """The schedule (JOBS_TIMEZONE) with the last run of each job."""
    return await schedule.list_jobs(runtime)


@router.get("/jobs/dead-letter", response_model=Page[DeadLetterOut])
async def list_dead_letters(session: SessionDep, _admin: AdminUser, page: PageDep) -> Page[DeadLetterOut]:
    """Consumer deliveries and jobs that exhausted their retries, newest first."""
    rows, cursor = await service.list_dead_letters(session=session, limit=page.limit, cursor=page.cursor)
    return Page(items=[DeadLetterOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=cursor)


@router.post("/jobs/dead-letter/{dead_id}/retry", response_model=DeadLetterOut, status_code=202)
async def retry_dead_letter(
    dead_id: uuid.UUID, session: SessionDep, runtime: RuntimeDep, _admin: AdminUser
) -> DeadLetterOut:
    """Retry a dead letter once: its event is delivered again / its job runs again, in the background."""
    dead = await service.retry_dead_letter(session=session, runtime=runtime, dead_id=dead_id)
    return DeadLetterOut.model_validate(dead, from_attributes=True)


@router.get("/reports/daily", response_model=DailyReportOut)
async def daily_report(
    runtime: RuntimeDep,
    _admin: AdminUser,
    day: Annotated[date, Query(alias="date", description="local day (JOBS_TIMEZONE), YYYY-MM-DD")],
) -> DailyReportOut:
    """The stored report of one day (produced by the 04:00 job)."""
    row = await analytics.get_report(runtime, day=day)
    if row is None:
        raise NotFound("no report for this day yet", code="report_not_found")
    return DailyReportOut(date=row.day, data=row.data, created_at=row.created_at)
