"""Background retraining jobs: a row per job in the database, the work in a separate process.

`POST /v1/models/retrain` must answer at once and must not slow the workers that serve
classify calls, so the job runs as its own `postsieve retrain --job ID` process (on the same
machine), which writes its progress and outcome to the row. `start_process` records the
process's pid in the row as soon as it starts and sends its stderr to a log file, because a
process can die before it writes anything (a refused option, a crash on import): a live job
whose process ended without an outcome is reported failed with the log's last line, and so is
one that stayed queued without a process. A dead job must never block retraining. Two jobs never
train at once: the API refuses a second while one is live, and the retrain itself holds the
models directory's lock.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa

from .database import Database
from .errors import ClassifierError, StoreError
from .schema import jobs

LIVE_STATES = ("queued", "running")
#: a queued job with no process after this long never started (the server died between queueing
#: it and starting its process; rows queued before pids were recorded at start look the same)
START_TIMEOUT = timedelta(minutes=1)
#: Logs of the latest jobs kept in the log directory (older ones are removed as a job starts).
KEEP_LOGS = 20


class JobConflict(ClassifierError):
    """A retraining job is already queued or running."""


class InvalidJobOptions(ClassifierError, ValueError):
    """Options a job's command would refuse; `messages` names every bad one."""

    def __init__(self, *messages: str):
        super().__init__("; ".join(messages))
        self.messages = list(messages)


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


def last_line(path: str | Path | None, limit: int = 500) -> str | None:
    """The last non-blank line of a log (the error of a process that died), or None."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 8192))
            tail = log.read().decode("utf-8", "replace")
    except (OSError, TypeError):
        return None
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else None


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
        job = self._read(job_id)
        if job is not None and job.state in LIVE_STATES:
            error = _death_of(job)
            if error is not None:
                self.fail_if_live(job.id, error)
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

    def _read(self, job_id: str) -> Job | None:
        try:
            with self.database.engine.connect() as conn:
                row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot read jobs: {type(exc).__name__}") from None
        return None if row is None else _row_to_job(row)

    def fail_if_live(self, job_id: str, error: str) -> None:
        """Mark a job failed unless it has ended: its process may write an outcome at any moment."""
        self._write(jobs.update().where(jobs.c.id == job_id, jobs.c.state.in_(LIVE_STATES))
                    .values(state="failed", error=error[:2000], updated_at=datetime.now(timezone.utc)))

    def exited(self, job_id: str, returncode: int) -> None:
        """A job's process exited: a job it left live failed, with the last line of its log."""
        job = self._read(job_id)
        if job is None or job.state not in LIVE_STATES:
            return
        if returncode < 0:
            error = f"the training process was killed by signal {-returncode}"
        elif returncode:
            error = f"the training process exited with status {returncode}"
        else:
            error = "the training process ended without an outcome"
        self.fail_if_live(job_id, _with_log_tail(error, job))

    def mark_running(self, job_id: str, pid: int) -> Job | None:
        """The job's own process says it runs: state `running`, and its pid where the server has not
        recorded one. Both writes are conditional, so they never overwrite an outcome, nor the pid
        and log the server records at start (the options are replaced only if unchanged since read).
        Returns the job, or None when it has ended already (then the process must not run it).
        """
        try:
            with self.database.engine.begin() as conn:
                row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
                if row is None or row.state not in LIVE_STATES:
                    return None
                now = datetime.now(timezone.utc)
                conn.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.state.in_(LIVE_STATES))
                             .values(state="running", updated_at=now))
                options = json.loads(row.options or "{}")
                if "pid" not in options:
                    conn.execute(jobs.update().where(jobs.c.id == job_id, jobs.c.options == row.options)
                                 .values(options=json.dumps({**options, "pid": pid})))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot write jobs: {type(exc).__name__}") from None
        return self._read(job_id)

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


def _death_of(job: Job) -> str | None:
    """Why a live job's process is known to be gone, or None while it may still be at work."""
    pid = job.options.get("pid")
    if pid:
        if pid_alive(pid):
            return None
        return _with_log_tail("the training process ended without an outcome", job)
    if job.state == "queued" and datetime.now(timezone.utc) - job.created_at > START_TIMEOUT:
        return f"the training process never started (queued for more than {START_TIMEOUT.seconds} s)"
    return None


def _with_log_tail(error: str, job: Job) -> str:
    """`error`, with the last line its process wrote to its log (what it died of) when there is one."""
    detail = last_line(job.options.get("log"))
    return f"{error}: {detail}" if detail else error


def start_process(store: JobStore, job: Job, command: list[str], env: dict, log_dir: str | Path) -> None:
    """Run a job's `command` detached, stderr to `log_dir/ID.log`; record its pid and log in the
    job's options, and mark the job failed if the process exits without an outcome.

    A thread waits for the process, so it is reaped and judged at once; `JobStore.get` judges it
    by its pid after a server restart.
    """
    log_path = Path(log_dir) / f"{job.id}.log"
    prune_logs(log_dir, keep=KEEP_LOGS - 1)  # no other job is live: `create` refused this one otherwise
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")
    except OSError as exc:
        store.update(job.id, state="failed", error=f"cannot start the job: cannot write its log: {exc}")
        return
    try:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=log, start_new_session=True)
    except OSError as exc:
        log.close()
        store.update(job.id, state="failed", error=f"cannot start the job: {exc}")
        return
    try:
        store.update(job.id, options={**job.options, "pid": proc.pid, "log": str(log_path)})
    except StoreError:
        proc.kill()  # a process the row cannot name could never be judged dead
        proc.wait()
        log.close()
        raise
    threading.Thread(target=_reap, args=(store, job.id, proc, log), name=f"reap-{job.id[:8]}", daemon=True).start()


def prune_logs(log_dir: str | Path, keep: int) -> None:
    """Remove all but the `keep` newest job logs in `log_dir`.

    A log matters while its job is live (a dead process's job is failed with the log's last
    line); an ended job's error holds that line already. Without pruning, every retrain
    requested over HTTP left a file behind for good. Files that cannot be removed are left.
    """
    try:
        logs = sorted(Path(log_dir).glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:  # no directory yet, or a log removed while sorting
        return
    for old in logs[keep:]:
        try:
            old.unlink()
        except OSError:
            pass


def _reap(store: JobStore, job_id: str, proc: subprocess.Popen, log) -> None:
    """Judge the job before reaping its process: until then the pid still exists, so `JobStore.get`
    cannot call the job dead first, without the exit status."""
    try:
        store.exited(job_id, _wait_unreaped(proc))
    except StoreError:
        pass  # the database is gone or busy; `get` judges the job by its pid later
    finally:
        proc.wait()
        log.close()


def _wait_unreaped(proc: subprocess.Popen) -> int:
    """The exit status, Popen's way (-N: killed by signal N), leaving the process to be reaped."""
    if not hasattr(os, "waitid"):
        return proc.wait()
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:  # reaped already
        return proc.wait()
    return -info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else info.si_status
