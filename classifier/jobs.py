"""Background retraining jobs: a row per job in the database, the work in a separate process.

`POST /v1/models/retrain` must answer at once and must not slow the workers that serve
classify calls, so the job runs as its own `postsieve retrain --job ID` process (on the same
machine), which writes its progress and outcome to the row. A job whose process died without
an outcome is reported failed. Two jobs never train at once: the API refuses a second while one
is live, and the retrain itself holds the models directory's lock.
"""
from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from .database import Database
from .errors import ClassifierError, StoreError
from .schema import jobs

LIVE_STATES = ("queued", "running")


class JobConflict(ClassifierError):
    """A retraining job is already queued or running."""


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: str
    progress: str | None
    requested_by: str | None
    options: dict
    result: dict | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "progress": self.progress,
                "requested_by": self.requested_by, "options": self.options, "result": self.result,
                "error": self.error, "created": self.created_at.isoformat(), "updated": self.updated_at.isoformat()}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _row_to_job(row) -> Job:
    return Job(row.id, row.kind, row.state, row.progress, row.requested_by, json.loads(row.options or "{}"),
               json.loads(row.result) if row.result else None, row.error, _utc(row.created_at), _utc(row.updated_at))


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobStore:
    """Jobs in the postsieve database."""

    def __init__(self, database: Database):
        self.database = database

    def create(self, kind: str, options: dict, requested_by: str | None) -> Job:
        """A queued job; JobConflict when another one is live."""
        live = self.live()
        if live is not None:
            raise JobConflict(f"retraining job {live.id} is {live.state}; wait for it to end")
        now = datetime.now(timezone.utc)
        job_id = uuid.uuid4().hex
        self._write(jobs.insert().values(id=job_id, kind=kind, state="queued", requested_by=requested_by,
                                         options=json.dumps(options), created_at=now, updated_at=now))
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        """The job, with a dead process's job reported failed."""
        try:
            with self.database.engine.connect() as conn:
                row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot read jobs: {type(exc).__name__}") from None
        if row is None:
            return None
        job = _row_to_job(row)
        if job.state in LIVE_STATES and "pid" in job.options and not pid_alive(job.options["pid"]):
            self.update(job.id, state="failed", error="the training process ended without an outcome")
            return self.get(job.id)
        return job

    def live(self) -> Job | None:
        try:
            with self.database.engine.connect() as conn:
                ids = conn.execute(sa.select(jobs.c.id).where(jobs.c.state.in_(LIVE_STATES))).scalars().all()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot read jobs: {type(exc).__name__}") from None
        for job_id in ids:
            job = self.get(job_id)
            if job is not None and job.state in LIVE_STATES:
                return job
        return None

    def update(self, job_id: str, **values) -> None:
        for name in ("result", "options"):
            if name in values and not isinstance(values[name], (str, type(None))):
                values[name] = json.dumps(values[name], default=str)
        values["updated_at"] = datetime.now(timezone.utc)
        self._write(jobs.update().where(jobs.c.id == job_id).values(**values))

    def _write(self, statement) -> None:
        try:
            with self.database.engine.begin() as conn:
                conn.execute(statement)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot write jobs: {type(exc).__name__}") from None
