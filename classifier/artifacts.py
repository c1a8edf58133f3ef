"""Versioned model directories: save atomically, load only what a manifest vouches for.

Layout under a models directory::

    models/
      ACTIVE                       the active version id (one line; written atomically)
      20261126-004501-1a2b3c4d/
        model.joblib               the pickled Model
        manifest.json              version, created, library versions, data hash and label counts,
                                   thresholds, held-out metrics, SHA-256 of model.joblib
        heldout.npz                out-of-fold labels and probabilities the thresholds were chosen on
        report.html                the training report (classifier.report), rebuilt from heldout.npz

joblib files are pickles, and unpickling runs code: `load_model` reads the manifest first, checks
the SHA-256 of model.joblib against it and the library versions against this process, and only
then unpickles. A version directory appears only complete (written to a temporary directory, then
renamed). heldout.npz and report.html are added after the rename and are not hashed: neither can
change what the model decides, and heldout.npz is plain arrays, read without unpickling.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import secrets
import shutil
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy
import scipy
import sklearn

from . import features
from .evaluate import finite
from .errors import ArtifactError, ArtifactTampered, ArtifactVersionMismatch
from .model import Model

FORMAT_VERSION = 1
MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
ACTIVE_FILE = "ACTIVE"
HELDOUT_FILE = "heldout.npz"


def library_versions() -> dict[str, str]:
    """Versions that decide whether a pickled model can be trusted in this process."""
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
    }


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def version_problems(saved: dict[str, str]) -> list[str]:
    """Differences that make a saved model unsafe to load here (empty list: fine).

    scikit-learn must match exactly (its pickles are not stable across releases); numpy, scipy and
    Python must match in major.minor.
    """
    here = library_versions()
    problems = []
    if saved.get("scikit-learn") != here["scikit-learn"]:
        problems.append(f"scikit-learn {saved.get('scikit-learn')} (this process has {here['scikit-learn']})")
    for name in ("numpy", "scipy", "python"):
        if _minor(saved.get(name, "?")) != _minor(here[name]):
            problems.append(f"{name} {saved.get(name)} (this process has {here[name]})")
    return problems


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _HashingWriter:
    """A file-like sink that only hashes what is written to it."""

    def __init__(self):
        self.digest = hashlib.sha256()

    def write(self, data) -> int:
        self.digest.update(data)  # bytes or, for large buffers, a PickleBuffer
        return memoryview(data).nbytes


def _pickle_sha256(obj) -> str:
    """SHA-256 of `obj`'s pickle, streamed: no copy of the pickle in memory."""
    sink = _HashingWriter()
    pickle.Pickler(sink, protocol=5).dump(obj)
    return sink.digest.hexdigest()


def save_model(model: Model, models_dir: str | Path, *, data_sha256: str, label_counts: dict,
               metrics: dict, params: dict, parent: str | None = None, extra: dict | None = None,
               created: datetime | None = None) -> Path:
    """Write `model` as a new version directory under `models_dir` and return its path.

    The version id is the creation time plus the first 8 hex digits of the SHA-256 of the
    model's pickle (and "-2", "-3", ... when the same model was already saved in the same
    second: training is deterministic, so a quick retrain on unchanged data makes the same
    bytes). Sets `model.version` to it. Does not make the version active.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    created = created or datetime.now(timezone.utc)
    tmp = _incoming_dir(models_dir)
    try:
        # The version goes inside the pickle, so hash it with a placeholder first, then name it
        # (pickle's C pickler: joblib's, written in Python, took 2.2 s at 100k training posts).
        stamp = created.strftime("%Y%m%d-%H%M%S")
        model.version = f"{stamp}-pending"
        short = _pickle_sha256(model)[:8]
        model.version = f"{stamp}-{short}"
        copy = 1
        while (models_dir / model.version).exists():
            copy += 1
            model.version = f"{stamp}-{short}-{copy}"
        joblib.dump(model, tmp / MODEL_FILE)
        manifest = {
            "format_version": FORMAT_VERSION,
            "features_version": features.FEATURES_VERSION,
            "version": model.version,
            "created": created.isoformat(timespec="seconds"),
            "parent": parent,
            "libraries": library_versions(),
            "training_data": {"sha256": data_sha256, "label_counts": label_counts},
            "thresholds": model.thresholds.to_dict(),
            "metrics": metrics,
            "params": params,
            "model_sha256": sha256_file(tmp / MODEL_FILE),
            **(extra or {}),
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(finite(manifest), indent=2, sort_keys=True, default=_jsonable,
                                                    allow_nan=False))
        final = models_dir / model.version
        if final.exists():
            raise ArtifactError(f"version {model.version} already exists in {models_dir}")
        os.rename(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _incoming_dir(models_dir: Path) -> Path:
    """A new, uniquely named directory to assemble a version in, before its rename.

    Made with mkdir's usual mode under the umask, not mkdtemp's owner-only 0700: the rename
    keeps the mode, and a server running as another user must be able to read the version.
    """
    while True:
        path = models_dir / f".incoming-{secrets.token_hex(8)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def save_heldout(version_dir: str | Path, y_true, probabilities) -> Path:
    """Store the out-of-fold labels and probabilities of a version, so its report can be rebuilt
    and a later candidate compared with it, without retraining."""
    y_true = numpy.asarray(y_true, dtype=str)
    probabilities = numpy.asarray(probabilities, dtype=float)
    if probabilities.ndim != 2 or probabilities.shape[0] != len(y_true):
        raise ValueError(f"probabilities must have shape ({len(y_true)}, k), got {probabilities.shape}")
    path = Path(version_dir) / HELDOUT_FILE
    tmp = path.with_name(f".{HELDOUT_FILE}.tmp")
    with open(tmp, "wb") as f:
        numpy.savez_compressed(f, y=y_true, probabilities=probabilities)
    os.replace(tmp, path)
    return path


def load_heldout(version_dir: str | Path) -> tuple[numpy.ndarray, numpy.ndarray]:
    """The (labels, probabilities) saved by `save_heldout` (ArtifactError if absent or unreadable)."""
    path = Path(version_dir) / HELDOUT_FILE
    try:
        with numpy.load(path, allow_pickle=False) as data:
            return data["y"], data["probabilities"]
    except FileNotFoundError:
        raise ArtifactError(f"{version_dir}: {HELDOUT_FILE} is missing") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from None


def _jsonable(value):
    if isinstance(value, (numpy.floating, numpy.integer)):
        return value.item()
    if isinstance(value, numpy.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a manifest")


_REQUIRED = {"format_version": int, "features_version": str, "version": str, "created": str,
             "libraries": dict, "thresholds": dict, "model_sha256": str}


def read_manifest(version_dir: str | Path) -> dict:
    """The manifest of a version directory (ArtifactError if missing, unreadable or incomplete)."""
    path = Path(version_dir) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{version_dir} is not a model directory: {MANIFEST_FILE} is missing") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: not a manifest (a JSON object is expected)")
    for key, kind in _REQUIRED.items():
        if not isinstance(manifest.get(key), kind):
            raise ArtifactError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    if not all(isinstance(v, str) for v in manifest["libraries"].values()):
        raise ArtifactError(f"{path}: library versions must be strings")
    return manifest


def verify_model_file(version_dir: Path, manifest: dict) -> Path:
    """The path of model.joblib once its SHA-256 matches `manifest` (ArtifactError if missing,
    ArtifactTampered if not); hashes only, never unpickles."""
    model_path = version_dir / MODEL_FILE
    if not model_path.exists():
        raise ArtifactError(f"{version_dir}: {MODEL_FILE} is missing")
    actual = sha256_file(model_path)
    if actual != manifest.get("model_sha256"):
        raise ArtifactTampered(
            f"{model_path}: SHA-256 {actual[:12]}... does not match the manifest's "
            f"{str(manifest.get('model_sha256'))[:12]}...; refusing to unpickle it")
    return model_path


def load_model(version_dir: str | Path) -> Model:
    """Load a model after checking its manifest, file hash and library versions."""
    version_dir = Path(version_dir)
    manifest = read_manifest(version_dir)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactVersionMismatch(
            f"{version_dir}: artifact format {manifest.get('format_version')} is not supported "
            f"(this postsieve reads format {FORMAT_VERSION}); retrain with `postsieve train`")
    if manifest.get("features_version") != features.FEATURES_VERSION:
        raise ArtifactVersionMismatch(
            f"{version_dir}: built with feature extraction {manifest.get('features_version')}, this "
            f"postsieve has {features.FEATURES_VERSION}; retrain with `postsieve train`")
    problems = version_problems(manifest.get("libraries", {}))
    if problems:
        raise ArtifactVersionMismatch(
            f"{version_dir}: saved with {'; '.join(problems)}; refusing to load a pickle across "
            f"library versions; retrain with `postsieve train`")
    model_path = verify_model_file(version_dir, manifest)
    try:
        model = joblib.load(model_path)
    except Exception as exc:  # a vouched-for file that still fails to load is a broken artifact
        raise ArtifactError(f"{model_path}: cannot load ({type(exc).__name__}: {exc})") from None
    if not isinstance(model, Model):
        raise ArtifactError(f"{model_path} does not hold a postsieve model")
    # The manifest is not hashed, so it may only describe the model, never change it: the
    # version and thresholds that decide come from the vouched-for pickle and must agree.
    if manifest["version"] != model.version:
        raise ArtifactTampered(f"{version_dir}: the manifest names version {manifest['version']!r}, "
                               f"the model file is {model.version!r}")
    if manifest["thresholds"] != model.thresholds.to_dict():
        raise ArtifactTampered(f"{version_dir}: the manifest's thresholds differ from the model's")
    model.metadata = manifest
    return model


def list_versions(models_dir: str | Path) -> list[dict]:
    """Manifests of every complete version under `models_dir`, oldest first.

    A directory whose manifest names another version (a copied or renamed version folder) is
    not a version: it cannot be activated (`versions.activate` refuses it), and listing it would
    show its manifest's version twice.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    out = []
    for child in sorted(models_dir.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and (child / MANIFEST_FILE).exists():
            try:
                manifest = read_manifest(child)
            except ArtifactError:
                continue
            if manifest.get("version") == child.name:
                out.append(manifest)
    return sorted(out, key=lambda m: (m.get("created", ""), m.get("version", "")))


def active_version(models_dir: str | Path) -> str | None:
    """The active version id: the ACTIVE file, else the newest version, else None."""
    name = read_pointer(models_dir)
    if name:
        return name
    versions = list_versions(models_dir)
    return versions[-1]["version"] if versions else None


def is_version_id(name: str) -> bool:
    """Whether `name` can be a version id: the name of one visible directory in the models
    directory, so never a path that leads out of it."""
    return bool(name) and not name.startswith(".") and "/" not in name and os.sep not in name


def read_pointer(models_dir: str | Path) -> str | None:
    """The version the ACTIVE file names, or None when there is no (or an empty) ACTIVE file.

    Raises ArtifactError when ACTIVE cannot be read or holds something other than a version id
    (written by hand: `../../etc` must not send a server to load from outside the directory).
    """
    pointer = Path(models_dir) / ACTIVE_FILE
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot read {pointer}: {exc}") from None
    if name and not is_version_id(name):
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise ArtifactError(f"{pointer} holds no version id (the name of a directory beside it): {shown!r}")
    return name or None


def set_active(models_dir: str | Path, version: str) -> None:
    """Point ACTIVE at `version` atomically (the version must exist and load cleanly).

    This is the bare pointer switch; `versions.activate` wraps it with a lock and records who
    switched what in the history, and is what the CLI and training use.
    """
    models_dir = Path(models_dir)
    load_model(models_dir / version)  # refuse to activate a broken or tampered artifact
    # A uniquely named temporary file, so two writers never share one; fsync before the rename
    # and of the directory after it, so a crash leaves either the old or the new pointer.
    fd, tmp = tempfile.mkstemp(prefix=f".{ACTIVE_FILE}.", dir=models_dir)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it owner-only; servers may run as another user
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(version + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, models_dir / ACTIVE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(models_dir)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (where the platform allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_path(path: str | Path) -> Model:
    """Load a version directory, or the active version of a models directory."""
    path = Path(path)
    if (path / MANIFEST_FILE).exists():
        return load_model(path)
    if path.is_dir():
        return load_active(path)
    raise ArtifactError(f"{path}: no such model directory")


def load_active(models_dir: str | Path) -> Model:
    """Load the active model of a models directory."""
    version = active_version(models_dir)
    if version is None:
        raise ArtifactError(f"no model in {models_dir}; run `postsieve train`")
    return load_model(Path(models_dir) / version)
