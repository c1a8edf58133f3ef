"""Admin endpoints (scope `admin`): model versions and background retraining jobs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from flask import Blueprint, current_app, jsonify, request, url_for

from classifier import artifacts
from classifier.cli_retrain import job_arguments
from classifier.errors import ArtifactError, StoreError
from classifier.feedback import identifier_problem
from classifier.jobs import InvalidJobOptions, Job, JobConflict, JobStore, start_process

from .api import ext, json_body
from .auth import require
from .errors import APIError

bp = Blueprint("admin", __name__, url_prefix="/v1/models")

def version_summary(manifest: dict, active: str | None) -> dict:
    gate = manifest.get("gate") or {}
    metrics = manifest.get("metrics") or {}
    return {"version": manifest.get("version"), "created": manifest.get("created"),
            "active": manifest.get("version") == active, "parent": manifest.get("parent"),
            "trained_by": manifest.get("trained_by"), "created_by": manifest.get("created_by"),
            "data_sha256": (manifest.get("training_data") or {}).get("sha256"),
            "label_counts": (manifest.get("training_data") or {}).get("label_counts"),
            "gate": {"passed": gate.get("passed"), "forced": gate.get("forced"),
                     "failures": gate.get("failures", [])} if gate else None,
            "metrics": {"spam_roc_auc": ((metrics.get("per_label") or {}).get("spam") or {}).get("roc_auc"),
                        "block_precision": metrics.get("block_precision")}}


@bp.get("")
def list_models():
    """Every version in the models directory, newest first, with lineage and gate results."""
    require("admin")
    directory = current_app.config["MODEL_DIR"]
    try:
        active = artifacts.active_version(directory)
    except ArtifactError:
        active = None
    versions = [version_summary(m, active) for m in reversed(artifacts.list_versions(directory))]
    return jsonify({"active": active, "versions": versions})


@bp.post("/retrain")
def start_retrain():
    """Start a retraining job in its own process; 202 with the job's id and where to poll."""
    key = require("admin")
    data = json_body() if request.content_length or request.mimetype else {}
    if not isinstance(data, dict):
        raise APIError(400, "send a JSON object of options (or no body)")
    try:
        args = job_arguments(data)  # the command's own checks, before anything is queued
    except InvalidJobOptions as exc:
        raise APIError(400, *exc.messages) from None
    jobs = JobStore(ext("database"))
    try:
        job = jobs.create("retrain", dict(data), key.name)
        spawn_retrain(jobs, job, args, key.name)
    except JobConflict as exc:
        raise APIError(409, str(exc)) from None
    except StoreError as exc:
        raise APIError(503, str(exc)) from None
    body = {"ok": True, "job": job.id, "state": job.state, "url": url_for("admin.job", job_id=job.id)}
    return jsonify(body), 202


@bp.get("/jobs/<job_id>")
def job(job_id: str):
    """A job's state (queued, running, succeeded, failed), last progress line and outcome."""
    require("admin")
    if identifier_problem("job", job_id) is not None:  # PostgreSQL refuses a NUL: no outage (503)
        raise APIError(404, f"no job {job_id[:40]!r}")
    try:
        found = JobStore(ext("database")).get(job_id[:40])
    except StoreError as exc:
        raise APIError(503, str(exc)) from None
    if found is None:
        raise APIError(404, f"no job {job_id[:40]!r}")
    return jsonify(found.to_dict())


def spawn_retrain(jobs: JobStore, job: Job, args: list[str], requested_by: str) -> None:
    """Run `python -m classifier retrain --job ID ...` detached, its stderr in the models
    directory's `.jobs/ID.log` (the error of a process that dies before it can report one)."""
    env = {**os.environ, "POSTSIEVE_DATABASE_URL": current_app.config["DATABASE_URL"],
           "POSTSIEVE_MODEL_DIR": current_app.config["MODEL_DIR"]}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "classifier", "retrain", "--job", job.id, "--by", requested_by, *args]
    start_process(jobs, job, command, env, Path(current_app.config["MODEL_DIR"]) / ".jobs")
