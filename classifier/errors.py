"""Exceptions raised by the classifier library.

    ClassifierError
     ├── InvalidPost            a post record is missing a field or has a wrong type
     ├── CorpusError            a labelled file cannot be read (names file and line)
     │    └── ColumnMappingError   an input lacks a mapped column (names the columns found)
     ├── ResumeError            `score --resume` cannot continue this output safely
     ├── MissingExtra           an optional dependency (Parquet, Dask) is not installed
     ├── NotFittedError         scoring a model that was never trained
     ├── ArtifactError          a model directory cannot be trusted or read
     │    ├── ArtifactTampered        model.joblib does not match its manifest's SHA-256
     │    ├── ArtifactVersionMismatch saved with other library or format versions
     │    └── ReportUnavailable       a version has no report and nothing to rebuild one from
     ├── StoreError             the feedback database cannot be reached, migrated or written
     ├── InvalidFeedback        a moderator's label that cannot be stored
     └── ActivationError        a version was not activated or rolled back to; ACTIVE is unchanged

The CLI and the HTTP layer turn these into one clear line or one JSON error shape.
"""


class ClassifierError(Exception):
    """Base class for every error the classifier raises on purpose."""


class InvalidPost(ClassifierError, ValueError):
    """A post record is missing a required field or has a field of the wrong type."""


class CorpusError(ClassifierError):
    """A labelled or unlabelled input file has a bad line; the message names file and line."""

    def __init__(self, message, *, path=None, line=None):
        self.path = path
        self.line = line
        where = f"{path}:{line}: " if path is not None and line is not None else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}")


class ColumnMappingError(CorpusError):
    """An input lacks a column the field mapping names (every row would fail the same way)."""


class ResumeError(ClassifierError):
    """An interrupted batch run cannot be continued safely (the message says why)."""


class MissingExtra(ClassifierError):
    """A feature needs an optional dependency; the message names the extra to install."""

    @classmethod
    def of(cls, feature: str, extra: str, module: str) -> "MissingExtra":
        return cls(f"{feature} needs {module}, which is not installed: pip install 'postsieve[{extra}]'")


class NotFittedError(ClassifierError):
    """The model has not been trained yet."""


class ArtifactError(ClassifierError):
    """A model directory is missing, incomplete or unreadable."""


class ArtifactTampered(ArtifactError):
    """The model file's SHA-256 differs from the one its manifest vouches for."""


class ArtifactVersionMismatch(ArtifactError):
    """The artifact was saved with a different format or library version."""


class ReportUnavailable(ArtifactError):
    """A version has no training report and no held-out scores to rebuild one from."""


class StoreError(ClassifierError):
    """The feedback database cannot be reached, migrated or written."""


class InvalidFeedback(ClassifierError, ValueError):
    """A moderator's label that cannot be stored (unknown label, missing post text)."""


class ActivationError(ClassifierError):
    """A version was not made active (missing, broken, nothing to roll back to); ACTIVE is unchanged.

    When an artifact check refused it, that ArtifactError is the `__cause__`.
    """
