"""Background jobs: a job whose process died, or never started, ends failed and stops blocking."""
import os
import signal
import sys
import time
from datetime import datetime, timezone

import pytest

from classifier.jobs import KEEP_LOGS, LIVE_STATES, START_TIMEOUT, JobConflict, JobStore, last_line, start_process

DEAD_PID = 2 ** 22 + 12345  # above any pid_max: no such process


@pytest.fixture()
def store(database):
    return JobStore(database)


def wait_until_ended(store, job_id, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job = store.get(job_id)
        if job.state not in LIVE_STATES:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job still {job.state} after {seconds} s: {job}")


def test_a_process_that_exits_at_once_fails_its_job_with_its_last_stderr_line(store, tmp_path):
    job = store.create("retrain", {"holdout": 0.5}, "forum")
    exits = "import sys; print('starting', file=sys.stderr); sys.exit('Error: no such option: --epochs')"
    start_process(store, job, [sys.executable, "-c", exits], dict(os.environ), tmp_path / "logs")
    done = wait_until_ended(store, job.id)
    assert done.state == "failed"
    assert done.error == "the training process exited with status 1: Error: no such option: --epochs"
    assert done.options["holdout"] == 0.5 and done.options["log"] == str(tmp_path / "logs" / f"{job.id}.log")
    assert store.create("retrain", {}, "forum").state == "queued"  # the dead job blocks nothing


def test_starting_a_job_keeps_only_the_latest_logs(store, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(KEEP_LOGS + 5):
        old = logs / f"old{i:02d}.log"
        old.write_text("done\n")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    (logs / "notes.txt").write_text("not a log")
    job = store.create("retrain", {}, "forum")
    start_process(store, job, [sys.executable, "-c", "pass"], dict(os.environ), logs)
    wait_until_ended(store, job.id)
    kept = {p.name for p in logs.glob("*.log")}
    assert kept == {f"{job.id}.log"} | {f"old{i:02d}.log" for i in range(6, KEEP_LOGS + 5)}  # the oldest six went
    assert (logs / "notes.txt").exists()


def test_a_killed_process_fails_its_job(store, tmp_path):
    job = store.create("retrain", {}, "forum")
    start_process(store, job, [sys.executable, "-c", "import time; time.sleep(30)"], dict(os.environ), tmp_path)
    os.kill(store.get(job.id).options["pid"], signal.SIGKILL)
    assert wait_until_ended(store, job.id).error == "the training process was killed by signal 9"


def test_a_command_that_cannot_start_fails_its_job(store, tmp_path):
    job = store.create("retrain", {}, "forum")
    start_process(store, job, [str(tmp_path / "no-such-program")], dict(os.environ), tmp_path)
    assert store.get(job.id).state == "failed" and "cannot start the job" in store.get(job.id).error


@pytest.mark.parametrize("state", ["queued", "running"])
def test_a_live_job_whose_process_is_gone_is_failed_with_its_log(store, tmp_path, state):
    log = tmp_path / "job.log"
    log.write_text("Usage: python -m classifier retrain [OPTIONS]\n\n"
                   "Error: Invalid value for '--holdout': 5.0 is not in the range 0<x<1.\n\n")
    job = store.create("retrain", {}, "forum")
    store.update(job.id, state=state, options={"pid": DEAD_PID, "log": str(log)})
    failed = store.get(job.id)
    assert failed.state == "failed"
    assert failed.error == ("the training process ended without an outcome: "
                            "Error: Invalid value for '--holdout': 5.0 is not in the range 0<x<1.")
    assert store.live() is None


def test_a_job_queued_without_a_process_fails_after_the_start_timeout(store):
    job = store.create("retrain", {}, "forum")
    with pytest.raises(JobConflict):  # its server may be about to start the process
        store.create("retrain", {}, "forum")
    store.update(job.id, created_at=datetime.now(timezone.utc) - START_TIMEOUT * 2)  # its server died
    assert store.get(job.id).state == "failed" and "never started" in store.get(job.id).error
    assert store.create("retrain", {}, "forum").state == "queued"


def test_an_outcome_written_before_the_process_exits_stands(store):
    """`retrain` writes `succeeded` and then exits 3 when the gate kept the candidate inactive."""
    job = store.create("retrain", {}, "forum")
    store.update(job.id, state="succeeded", options={"pid": DEAD_PID}, result={"promoted": False})
    store.exited(job.id, 3)
    store.fail_if_live(job.id, "too late")
    assert store.get(job.id).state == "succeeded" and store.get(job.id).error is None


def test_last_line_skips_blank_lines_and_missing_logs(tmp_path):
    log = tmp_path / "x.log"
    log.write_bytes(b"first\n" + b"x" * 20000 + b"\nTraceback ...\nValueError: bad \xff\n\n  \n")
    assert last_line(log) == "ValueError: bad \ufffd"
    assert last_line(tmp_path / "none.log") is None and last_line(None) is None


def test_the_job_process_saying_it_runs_keeps_what_the_server_recorded(store):
    job = store.create("retrain", {"seed": 3}, "forum")
    store.update(job.id, options={**job.options, "pid": os.getpid(), "log": "/tmp/x.log"})  # the server, at start
    running = store.mark_running(job.id, 999)
    assert running.state == "running" and running.options == {"seed": 3, "pid": os.getpid(), "log": "/tmp/x.log"}
    store.fail_if_live(job.id, "stopped")
    other = store.create("retrain", {}, "cli")  # started by hand: no pid recorded by a server
    assert store.mark_running(other.id, os.getpid()).options == {"pid": os.getpid()}


def test_a_job_that_has_ended_is_not_run_by_a_late_process(store):
    job = store.create("retrain", {}, "forum")
    store.fail_if_live(job.id, "the training process never started")
    assert store.mark_running(job.id, os.getpid()) is None
    assert store.get(job.id).state == "failed" and store.get(job.id).error == "the training process never started"
