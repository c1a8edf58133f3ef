"""API keys: created once, stored as SHA-256 digests, checked in constant time.

A key looks like `psk_<key id>_<secret>`. The key id is public and finds the row; the whole key is
hashed and compared with `hmac.compare_digest`, so neither a missing key id nor a wrong secret
answers faster than the other. The secret has 256 bits of entropy, which is why a plain SHA-256
(rather than a slow password hash) is the right digest: nothing guessable is being protected, and
checking stays in microseconds on every request.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from classifier.database import Database
from classifier.errors import ClassifierError, StoreError
from classifier.feedback import identifier_problem
from classifier.schema import api_keys
from classifier.outages import OutageLog

#: `admin` implies the other two.
SCOPES = ("classify", "feedback", "admin")
PREFIX = "psk"
_KEY_ID = re.compile(r"[0-9a-f]{12}")
_DUMMY_DIGEST = hashlib.sha256(b"postsieve: no such key").hexdigest()


class InvalidKeyRequest(ClassifierError):
    """A key cannot be created or revoked as asked (bad scope, unknown name)."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    row_id: int
    key_id: str
    name: str
    scopes: frozenset[str]
    rate_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        return self.revoked_at is None and (scope in self.scopes or "admin" in self.scopes)

    def to_dict(self) -> dict:
        return {"key_id": self.key_id, "name": self.name, "scopes": sorted(self.scopes),
                "rate_per_minute": self.rate_per_minute, "created": self.created_at.isoformat(),
                "revoked": self.revoked_at.isoformat() if self.revoked_at else None}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def parse_scopes(values) -> frozenset[str]:
    scopes = set()
    for value in values:
        scopes.update(part.strip() for part in value.split(",") if part.strip())
    unknown = scopes - set(SCOPES)
    if unknown or not scopes:
        raise InvalidKeyRequest(f"scope must be one or more of {', '.join(SCOPES)}, got {', '.join(sorted(unknown)) or 'none'}")
    return frozenset(scopes)


def _utc(value):
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _row_to_key(row) -> ApiKey:
    return ApiKey(row.id, row.key_id, row.name, frozenset(row.scopes.split(",")), row.rate_per_minute,
                  _utc(row.created_at), _utc(row.revoked_at))


class KeyStore:
    """API keys in the postsieve database."""

    def __init__(self, database: Database):
        self.database = database

    def create(self, name: str, scopes, *, rate_per_minute: int | None = None) -> tuple[str, ApiKey]:
        """Make a key; return the plain key (shown once, never stored) and its record."""
        name = (name or "").strip()
        # The name is the source of every label the key sends, so it must be one the feedback
        # store takes: a name with a tab made every feedback call of the key a 400.
        problem = identifier_problem("name", name)
        if problem is not None:
            raise InvalidKeyRequest(problem)
        scope_set = parse_scopes(scopes)
        if rate_per_minute is not None and rate_per_minute < 0:
            raise InvalidKeyRequest(f"rate must be >= 0 requests per minute (0: unlimited), got {rate_per_minute}")
        key_id = secrets.token_hex(6)
        plain = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        now = datetime.now(timezone.utc)
        try:
            with self.database.engine.begin() as conn:
                row_id = conn.execute(api_keys.insert().values(
                    key_id=key_id, name=name, secret_sha256=digest(plain), scopes=",".join(sorted(scope_set)),
                    rate_per_minute=rate_per_minute, created_at=now)).inserted_primary_key[0]
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot store the key: {type(exc).__name__}") from None
        return plain, ApiKey(row_id, key_id, name, scope_set, rate_per_minute, now, None)

    def verify(self, plain: str) -> ApiKey | None:
        """The key's record if `plain` is a live key, else None (in constant time per lookup)."""
        parts = plain.split("_") if isinstance(plain, str) else []
        key_id = parts[1] if len(parts) >= 3 and parts[0] == PREFIX and _KEY_ID.fullmatch(parts[1]) else ""
        row = None
        if key_id:
            try:
                with self.database.engine.connect() as conn:
                    row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
            except sa.exc.SQLAlchemyError as exc:
                raise StoreError(f"cannot read API keys: {type(exc).__name__}") from None
        stored = row.secret_sha256 if row is not None else _DUMMY_DIGEST
        matches = hmac.compare_digest(digest(plain), stored)
        if row is None or not matches or row.revoked_at is not None:
            return None
        return _row_to_key(row)

    def list(self) -> list[ApiKey]:
        try:
            with self.database.engine.connect() as conn:
                rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.id)).all()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot read API keys: {type(exc).__name__}") from None
        return [_row_to_key(row) for row in rows]

    def revoke(self, name_or_key_id: str) -> list[ApiKey]:
        """Revoke the live keys with this name or key id; return them (an error if none matched)."""
        now = datetime.now(timezone.utc)
        matched = [k for k in self.list() if k.revoked_at is None and name_or_key_id in (k.name, k.key_id)]
        if not matched:
            raise InvalidKeyRequest(f"no live key named or with key id {name_or_key_id!r} (see `postsieve keys list`)")
        try:
            with self.database.engine.begin() as conn:
                conn.execute(api_keys.update().where(api_keys.c.id.in_([k.row_id for k in matched]))
                             .values(revoked_at=now))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot revoke the key: {type(exc).__name__}") from None
        return matched


class KeyCache:
    """Recently verified keys, so most requests skip the database; a revocation is seen within `ttl` s."""

    def __init__(self, store: KeyStore, *, ttl: float = 5.0, max_entries: int = 10_000,
                 outages: OutageLog | None = None):
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self.outages = outages  # told of every store answer and failure, not of cache hits
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def verify(self, plain: str) -> ApiKey | None:
        cache_key = digest(plain)
        now = time.monotonic()
        hit = self._entries.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            key = self.store.verify(plain)
        except StoreError as exc:
            if self.outages is not None:
                self.outages.failed(exc)
            raise
        if self.outages is not None:
            self.outages.recovered()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[cache_key] = (now + self.ttl, key)
        return key
