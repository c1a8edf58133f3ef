"""Admin endpoints (scope `admin`): model versions and background retraining jobs."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

from flask import Blueprint, current_app, jsonify, request, url_for

from classifier import artifacts
from classifier.errors import ArtifactError, StoreError
from classifier.jobs import JobConflict, JobStore

from .api import ext, json_body
from .auth import require
from .errors import APIError

bp = Blueprint("admin", __name__, url_prefix="/v1/models")

#: Options a retrain request may set, with their types and the CLI flag each becomes.
RETRAIN_OPTIONS = {"force": (bool, "--force"), "no_promote": (bool, "--no-promote"),
                   "feedback_weight": ((int, float), "--feedback-weight"), "holdout": ((int, float), "--holdout"),
                   "max_recall_loss": ((int, float), "--max-recall-loss"),
                   "max_precision_loss": ((int, float), "--max-precision-loss"),
                   "max_auc_loss": ((int, float), "--max-auc-loss"),
                   "max_spam_auc_loss": ((int, float), "--max-spam-auc-loss"), "min_heldout": (int, "--min-heldout"),
                   "seed": (int, "--seed")}


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
    args, errors = [], []
    for name, value in data.items():
        if name not in RETRAIN_OPTIONS:
            errors.append(f"unknown option {name!r}; known: {', '.join(RETRAIN_OPTIONS)}")
            continue
        kinds, flag = RETRAIN_OPTIONS[name]
        if isinstance(value, bool) and kinds is not bool or not isinstance(value, kinds):
            errors.append(f"{name} must be {'true or false' if kinds is bool else 'a number'}")
        elif kinds is bool:
            args += [flag] if value else []
        else:
            args += [flag, str(value)]
    if errors:
        raise APIError(400, *errors)
    jobs = JobStore(ext("database"))
    try:
        job = jobs.create("retrain", dict(data), key.name)
    except JobConflict as exc:
        raise APIError(409, str(exc)) from None
    except StoreError as exc:
        raise APIError(503, str(exc)) from None
    spawn_retrain(job.id, args, key.name)
    body = {"ok": True, "job": job.id, "state": job.state, "url": url_for("admin.job", job_id=job.id)}
    return jsonify(body), 202


@bp.get("/jobs/<job_id>")
def job(job_id: str):
    """A job's state (queued, running, succeeded, failed), last progress line and outcome."""
    require("admin")
    try:
        found = JobStore(ext("database")).get(job_id[:40])
    except StoreError as exc:
        raise APIError(503, str(exc)) from None
    if found is None:
        raise APIError(404, f"no job {job_id[:40]!r}")
    return jsonify(found.to_dict())


def spawn_retrain(job_id: str, args: list[str], requested_by: str) -> None:
    """Run `python -m classifier retrain --job ID ...` detached; a thread reaps it when it ends."""
    env = {**os.environ, "POSTSIEVE_DATABASE_URL": current_app.config["DATABASE_URL"],
           "POSTSIEVE_MODEL_DIR": current_app.config["MODEL_DIR"]}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "classifier", "retrain", "--job", job_id, "--by", requested_by, *args]
    try:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        JobStore(ext("database")).update(job_id, state="failed", error=f"cannot start the job: {exc}")
        return
    threading.Thread(target=proc.wait, name=f"reap-{job_id[:8]}", daemon=True).start()
