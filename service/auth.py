"""Who may call what: API keys from `Authorization: Bearer` (or Akismet's form fields), scopes,
and the per-key rate limit. Views declare what they need with `require(scope)`."""
from __future__ import annotations

from flask import current_app, g, request

from classifier.errors import StoreError

from .errors import APIError
from .keys import ApiKey
from .ratelimit import retry_after_header


def bearer_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise APIError(401, "send the key as 'Authorization: Bearer KEY'", headers={"WWW-Authenticate": "Bearer"})
    return value.strip()


def authenticate(plain: str | None, scope: str) -> ApiKey | None:
    """The caller's key, checked for `scope` and its rate; None for an anonymous open classify."""
    if plain is None:
        if scope == "classify" and current_app.config["OPEN_CLASSIFY"]:
            return None
        raise APIError(401, f"an API key with scope '{scope}' is required", headers={"WWW-Authenticate": "Bearer"})
    try:
        key = current_app.extensions["postsieve.keys"].verify(plain)
    except StoreError as exc:
        raise APIError(503, f"cannot check the key: {exc}") from None
    if key is None:
        raise APIError(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if not key.allows(scope):
        raise APIError(403, f"this key lacks the '{scope}' scope (it has: {', '.join(sorted(key.scopes))})")
    rate = key.rate_per_minute if key.rate_per_minute is not None else current_app.config["RATE_LIMIT_PER_MINUTE"]
    wait = current_app.extensions["postsieve.ratelimiter"].hit(key.row_id, int(rate))
    if wait:
        raise APIError(429, f"rate limit of {rate} requests per minute exceeded for key '{key.name}'",
                       headers={"Retry-After": retry_after_header(wait)})
    g.api_key = key
    return key


def require(scope: str) -> ApiKey | None:
    """Authenticate a native /v1 request (Bearer key) for `scope`."""
    return authenticate(bearer_key(), scope)
