"""Tables of postsieve's database, in SQLAlchemy Core.

Changes go through a new migration in `classifier/migrations/versions/` (tests upgrade an empty
database and the previous schema); this module is what the newest migration produces.
"""
from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: Every moderator decision ever received, one row each; the newest row per (source, post_id) is
#: the label used for training, the older rows are its history.
feedback = sa.Table(
    "feedback", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("post_id", sa.String(200), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # 1, 2, ... per (source, post_id)
    sa.Column("label", sa.String(20), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("category", sa.String(500)),
    sa.Column("author", sa.Text),  # JSON text, as received
    sa.Column("moderator", sa.String(200)),
    sa.Column("note", sa.Text),
    sa.Column("channel", sa.String(20), nullable=False),  # api, akismet, import
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # Unique: two concurrent copies of one label cannot both become row n+1 (idempotency).
    sa.UniqueConstraint("source", "post_id", "seq", name="uq_feedback_source_post_seq"),
)

#: API keys: only a SHA-256 of the secret is kept; `key_id` is the public part used for lookup.
api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_id", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("secret_sha256", sa.String(64), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),  # comma-separated
    sa.Column("rate_per_minute", sa.Integer),  # None: the server's default
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

#: What postsieve answered for each post it classified over HTTP, for overturn statistics: a
#: moderator label that disagrees with the decision later counts against the model version.
decisions = sa.Table(
    "decisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("post_id", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(100), nullable=False),
    sa.Column("label", sa.String(20), nullable=False),
    sa.Column("decision", sa.String(20), nullable=False),
    sa.Column("spam_score", sa.Float, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_decisions_source_post", "source", "post_id"),
    sa.Index("ix_decisions_created", "created_at"),
)

#: Background retraining jobs started over HTTP; at most one runs at a time.
jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),  # queued, running, succeeded, failed
    sa.Column("progress", sa.Text),
    sa.Column("requested_by", sa.String(200)),
    sa.Column("options", sa.Text),  # JSON
    sa.Column("result", sa.Text),  # JSON
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
