"""Model versions for operators: list and describe them, activate one, roll back, keep a history.

ACTIVE (see artifacts.py) stays the one atomic pointer that servers read. Every switch made here
is checked first (the version must load: hash, library versions, pickle) and then recorded as
one JSON line appended to HISTORY_FILE in the models directory:

    {"at": "2026-11-26T03:12:09+00:00", "by": "alice", "action": "activate",
     "from": "20261126-011000-e51be642", "to": "20261126-030243-347fc736", "reason": null}

`action` is "activate", "rollback", "train" (a training run that activated its new version) or
"retrain" (a gated retraining run that promoted its candidate).
`rollback` replays the history as a stack of active versions, so repeated rollbacks walk further
back (v1, v2, v3 active in turn: rollback gives v2, a second rollback v1) instead of flipping
between the last two. ACTIVE is switched before the line is appended: a crash in between leaves
a switch the history does not know about, which rollback treats like a hand edit of ACTIVE (it
returns to the last recorded version).
"""
from __future__ import annotations

import fcntl
import getpass
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import artifacts
from .errors import ActivationError, ArtifactError

HISTORY_FILE = "history.jsonl"
ACTIONS = ("activate", "rollback", "train", "retrain")
_LOCK_FILE = ".activate.lock"

#: Held-out metrics shown for a version, in this order (keys of the manifest's "metrics").
KEY_METRICS = ("spam_roc_auc", "block_precision", "block_recall", "spam_recall_at_1pct_fpr",
               "legit_blocked_rate", "accuracy", "n")


@dataclass(frozen=True)
class Activation:
    """One recorded switch of ACTIVE."""

    at: str
    by: str
    action: str
    from_version: str | None
    to_version: str
    reason: str | None = None

    def to_dict(self) -> dict:
        return {"at": self.at, "by": self.by, "action": self.action, "from": self.from_version,
                "to": self.to_version, "reason": self.reason}

    @classmethod
    def from_dict(cls, record) -> Activation:
        """Parse one history record (ValueError if it is not one)."""
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        for key in ("at", "by", "action", "to"):
            if not isinstance(record.get(key), str):
                raise ValueError(f"{key!r} is missing or not a string")
        for key in ("from", "reason"):
            if record.get(key) is not None and not isinstance(record[key], str):
                raise ValueError(f"{key!r} is not a string")
        return cls(record["at"], record["by"], record["action"], record.get("from"), record["to"],
                   record.get("reason"))


def current_user() -> str:
    """Who is switching: $LOGNAME/$USER or the password database, else "unknown"."""
    try:
        return getpass.getuser()
    except Exception:  # no such variable and no passwd entry (some containers)
        return "unknown"


def read_history(models_dir: str | Path) -> list[Activation]:
    """Every recorded switch, oldest first; lines that do not parse are skipped.

    The only line expected not to parse is a last line torn by a crash during its write.
    """
    path = Path(models_dir) / HISTORY_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror or exc}") from None
    out = []
    for line in text.splitlines():
        try:
            out.append(Activation.from_dict(json.loads(line)))
        except (ValueError, RecursionError):
            continue
    return out


def _append(models_dir: Path, entry: Activation) -> None:
    """Append one line to the history and fsync it."""
    data = (json.dumps(entry.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(models_dir / HISTORY_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # a torn last line stays on its own line, this record intact
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _switch_lock(models_dir: Path):
    """One switch at a time per models directory, so the history follows ACTIVE's real order."""
    if not models_dir.is_dir():
        raise ActivationError(f"{models_dir}: no such models directory")
    try:
        lock = open(models_dir / _LOCK_FILE, "a")
    except OSError as exc:  # a read-only models directory, say
        raise ActivationError(f"cannot lock {models_dir / _LOCK_FILE}: {exc.strerror or exc}; "
                              f"ACTIVE unchanged") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _active_or_none(models_dir: Path) -> str | None:
    """What ACTIVE names; None without an ACTIVE file (versions only saved so far) or when it
    cannot be read (which must not stop an operator from fixing it)."""
    try:
        return artifacts.read_pointer(models_dir)
    except ArtifactError:
        return None


def _served_or_none(models_dir: Path) -> str | None:
    """The version a server would load: what ACTIVE names, else the newest version."""
    try:
        return artifacts.active_version(models_dir)
    except ArtifactError:
        return None


def _check_version_dir(models_dir: Path, version: str) -> Path:
    if not artifacts.is_version_id(version):
        raise ArtifactError(f"{version!r} is not a version id (the name of a directory in {models_dir})")
    path = models_dir / version
    if not path.is_dir():
        raise ArtifactError(f"no version {version} in {models_dir}")
    return path


def _version_manifest(models_dir: Path, version: str) -> tuple[Path, dict]:
    """The folder and manifest of `version`, refusing a folder whose manifest names another version:
    servers and the history know a version by its folder's name, and a renamed copy would make
    every server reload it on every check."""
    path = _check_version_dir(models_dir, version)
    manifest = artifacts.read_manifest(path)
    if manifest["version"] != version:
        raise ArtifactError(f"{path} is not version {version}: its manifest names version {manifest['version']} "
                            f"(a copied or renamed version folder); a version directory must keep the name it "
                            f"was saved under")
    return path, manifest


def _switch(models_dir: Path, version: str, *, action: str, by: str | None, reason: str | None,
            previous: str | None) -> Activation | None:
    """Verify `version`, point ACTIVE at it and record it (caller holds the switch lock)."""
    try:
        _version_manifest(models_dir, version)
        artifacts.set_active(models_dir, version)  # loads it completely before switching
    except (ArtifactError, OSError) as exc:
        still = f"ACTIVE still names {previous}" if previous else "ACTIVE unchanged"
        raise ActivationError(f"{version} not activated ({still}): {exc}") from exc
    if previous == version:
        return None
    entry = Activation(at=datetime.now(timezone.utc).isoformat(timespec="seconds"), by=by or current_user(),
                       action=action, from_version=previous, to_version=version, reason=reason)
    try:
        _append(models_dir, entry)
    except OSError as exc:
        raise ArtifactError(f"{version} is active, but its switch could not be recorded in "
                            f"{models_dir / HISTORY_FILE}: {exc.strerror or exc}") from None
    return entry


def activate(models_dir: str | Path, version: str, *, by: str | None = None, reason: str | None = None,
             action: str = "activate") -> Activation | None:
    """Make `version` the active model after checking it loads; record the switch.

    Parameters
    ----------
    models_dir : the models directory.
    version : a version id (directory name) in it.
    by : who switches (default: the current user).
    reason : free text kept in the history.
    action : "activate", or "train" when a training run activates its new version.

    Returns
    -------
    The recorded Activation, or None when `version` was already active (nothing is recorded).
    Raises ActivationError, with ACTIVE unchanged, for a missing, broken or tampered version.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    models_dir = Path(models_dir)
    with _switch_lock(models_dir):
        return _switch(models_dir, version, action=action, by=by, reason=reason,
                       previous=_active_or_none(models_dir))


def _active_stack(history: list[Activation]) -> list[str]:
    """The versions that were active in turn, with rolled-back ones popped off.

    The first record's "from" starts the stack: a models directory used before the history
    existed (or trained without it) can still roll back to the version it served then.
    """
    stack: list[str] = [history[0].from_version] if history and history[0].from_version else []
    for entry in history:
        if entry.action == "rollback" and entry.to_version in stack:
            last = len(stack) - 1 - stack[::-1].index(entry.to_version)
            del stack[last + 1:]
        elif not stack or stack[-1] != entry.to_version:
            stack.append(entry.to_version)
    return stack


def rollback_target(models_dir: str | Path) -> str | None:
    """The version `rollback` would activate: the one active before the current one, or None.

    If ACTIVE was changed without being recorded (edited by hand), that is the last recorded
    version.
    """
    models_dir = Path(models_dir)
    return _previous(read_history(models_dir), _active_or_none(models_dir))


def _previous(history: list[Activation], current: str | None) -> str | None:
    stack = _active_stack(history)
    if stack and stack[-1] == current:
        stack.pop()
    return stack[-1] if stack else None


def rollback(models_dir: str | Path, *, by: str | None = None, reason: str | None = None) -> Activation:
    """Re-activate the version that was active before the current one, checking it like `activate`.

    Raises ActivationError, with ACTIVE unchanged, when the history records no earlier version
    or that version no longer loads.
    """
    models_dir = Path(models_dir)
    with _switch_lock(models_dir):
        current = _active_or_none(models_dir)
        target = _previous(read_history(models_dir), current)
        if target is None:
            raise ActivationError(f"nothing to roll back to: {models_dir / HISTORY_FILE} records no version "
                                  f"active before {current or 'the current one'}")
        # Never None: the target differs from the current version by construction.
        return _switch(models_dir, target, action="rollback", by=by, reason=reason, previous=current)


def _number(value) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _summary(manifest: dict, active: str | None) -> dict:
    metrics = manifest.get("metrics") if isinstance(manifest.get("metrics"), dict) else {}
    data = manifest.get("training_data") if isinstance(manifest.get("training_data"), dict) else {}
    counts = data.get("label_counts") if isinstance(data.get("label_counts"), dict) else {}
    return {
        "version": manifest["version"],
        "created": manifest["created"],
        "active": manifest["version"] == active,
        "parent": manifest.get("parent"),
        "label_counts": counts,
        "spam_roc_auc": _number(metrics.get("spam_roc_auc")),
        "block_precision": _number(metrics.get("block_precision")),
    }


def list_summaries(models_dir: str | Path) -> list[dict]:
    """One plain dict per version, newest first: version, created, active, parent, label counts,
    spam ROC-AUC and block precision (held-out, None when the manifest has none).

    Reads manifests only (cheap); `activate` is what checks that a version really loads.
    Raises ArtifactError if `models_dir` does not exist.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise ArtifactError(f"{models_dir}: no such models directory")
    active = _served_or_none(models_dir)
    return [_summary(m, active) for m in reversed(artifacts.list_versions(models_dir))]


def describe(models_dir: str | Path, version: str | None = None) -> dict:
    """The essentials of one version's manifest (default: the active one) and its switches.

    Adds "library_problems" (library differences that would stop this process loading it; empty
    when none), "model_file_problem" (why model.joblib fails its manifest's SHA-256, else None:
    hashing takes a fraction of a second, unlike the unpickling a full check would need) and
    "history" (recorded switches to or from it, oldest first). Raises ArtifactError for a folder
    whose manifest names another version, as `list_summaries` leaves it out.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise ArtifactError(f"{models_dir}: no such models directory")
    active = _served_or_none(models_dir)
    version = version or active
    if version is None:
        raise ArtifactError(f"no model in {models_dir}")
    path, manifest = _version_manifest(models_dir, version)
    try:
        artifacts.verify_model_file(path, manifest)
        file_problem = None
    except (ArtifactError, OSError) as exc:  # an unreadable file fails the check too
        file_problem = str(exc)
    metrics = manifest.get("metrics") if isinstance(manifest.get("metrics"), dict) else {}
    data = manifest.get("training_data") if isinstance(manifest.get("training_data"), dict) else {}
    files = manifest.get("corpus_files") if isinstance(manifest.get("corpus_files"), list) else []
    return {
        **_summary(manifest, active),  # the fields `list` shows, label counts among them
        "training_data": {"sha256": data.get("sha256"), "files": [str(f) for f in files]},
        "metrics": {key: _number(metrics.get(key)) for key in KEY_METRICS if _number(metrics.get(key)) is not None},
        "thresholds": manifest["thresholds"],
        "libraries": manifest["libraries"],
        "library_problems": artifacts.version_problems(manifest["libraries"]),
        "model_sha256": manifest["model_sha256"],
        "model_file_problem": file_problem,
        "history": [e.to_dict() for e in read_history(models_dir) if version in (e.from_version, e.to_version)],
    }
