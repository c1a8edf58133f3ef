"""The database behind the feedback store and API keys: SQLite by default, PostgreSQL by URL.

`Database` owns one SQLAlchemy engine per process (an engine's pool must not cross a fork, and
gunicorn forks workers after the app is built) and brings the schema up to date with the Alembic
migrations in `classifier/migrations/`. SQLite runs in WAL mode with `synchronous=FULL`, so a
label that was acknowledged survives a crash of the process or the machine.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from .errors import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def default_url(data_dir: str | Path) -> str:
    """A SQLite file in the data directory."""
    return f"sqlite:///{Path(data_dir) / 'postsieve.db'}"


def normalise_url(url: str) -> URL:
    """Parse a database URL; plain `postgresql://` means the psycopg 3 driver postsieve ships with."""
    try:
        parsed = make_url(url)
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://")
        parsed.get_dialect()  # an unknown or missing driver fails here, with one clear line
    except StoreError:
        raise
    except Exception as exc:
        shown = redact_password(url)
        reason = str(exc).replace(url, shown)  # SQLAlchemy's parse error quotes the whole URL
        raise StoreError(f"cannot use database URL {shown!r}: {type(exc).__name__}: {reason}") from None
    return parsed


_QUERY_PASSWORD = re.compile(r"(?i)((?:^|[?&])password=)[^&#]*")


def redact_password(url: str) -> str:
    """The URL with its password (if any) shown as ***: error lines end up in logs and terminals.

    Done on the text, since a URL that does not parse is the one an error line names. A raw
    password may hold "@", "/", "?" or "#", so it runs to the last "@" of the URL (a host holds
    none); a `password=` query parameter (libpq takes one) is hidden too.
    """
    scheme, sep, rest = url.partition("://")
    at = rest.rfind("@")
    colon = rest.find(":", 0, at)
    if sep and at != -1 and colon != -1 and not set(rest[:colon]) & set("/?#"):
        rest = rest[:colon + 1] + "***" + rest[at:]
    return _QUERY_PASSWORD.sub(r"\1***", scheme + sep + rest)


def storable_text(text: str | None) -> str | None:
    """Text as both databases take it: PostgreSQL refuses NUL and neither takes a lone surrogate,
    so NUL is dropped and a lone surrogate becomes "?" (ordinary text passes unchanged)."""
    if text is None or (text.isascii() and "\x00" not in text):
        return text
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def os_reason(exc: OSError) -> str:
    """Why a directory could not be made, in words (mkdir says "File exists" for a file in the way)."""
    return "a file of that name is in the way" if isinstance(exc, FileExistsError) else exc.strerror or str(exc)


def create_engine(url: str | URL) -> Engine:
    """An engine with postsieve's connection settings (WAL for SQLite; pre-ping for PostgreSQL)."""
    parsed = normalise_url(str(url) if isinstance(url, str) else url.render_as_string(hide_password=False))
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # a file of that name (POSTSIEVE_DATA_DIR), no permission
                raise StoreError(f"cannot use {folder} for the database: {os_reason(exc)}") from None
        engine = sa.create_engine(parsed, connect_args={"timeout": 10})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        # a blackholed server must not hang key checks and /readyz until the worker timeout
        connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 5}
        try:
            engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5,
                                      connect_args=connect_args)
        except ImportError as exc:
            raise StoreError(f"the driver for {parsed.drivername} is not installed ({exc}); "
                             "pip install 'postsieve[postgres]' installs psycopg") from None
    return engine


class Database:
    """One database URL; hands out this process's engine and runs migrations."""

    def __init__(self, url: str):
        self.url = normalise_url(url)
        self._engine: Engine | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """This process's engine, created on first use and again after a fork."""
        if self._engine is None or self._pid != os.getpid():
            with self._lock:
                if self._engine is None or self._pid != os.getpid():
                    if self._engine is not None:
                        self._engine.dispose(close=False)  # the parent's connections stay the parent's
                    self._engine = create_engine(self.url)
                    self._pid = os.getpid()
        return self._engine

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (creates it in an empty database)."""
        run_migrations(self.engine, "head")

    def ping(self) -> None:
        """Raise StoreError unless a trivial query succeeds."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database unreachable: {type(exc).__name__}") from None

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None



def _alembic_config(connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def run_migrations(engine: Engine, revision: str = "head") -> None:
    """Upgrade (or, with a revision such as "-1" or "base", downgrade) the schema."""
    from alembic import command
    from alembic.util import CommandError

    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # several processes starting at once migrate once
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(7426117)"))
            config = _alembic_config(connection)
            if revision in ("base",) or revision.startswith("-"):
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot migrate the database: {type(exc).__name__}: {exc.orig if hasattr(exc, 'orig') else exc}") from None
    except CommandError as exc:
        raise StoreError(f"cannot migrate the database ({exc}); was it migrated by a newer postsieve?") from None


def schema_revision(engine: Engine) -> str | None:
    """The migration revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
