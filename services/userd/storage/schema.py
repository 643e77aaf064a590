"""The users table, as the migrations create it (migrations/versions/)."""

from __future__ import annotations

from grpcdemo.persistence.database import UTCDateTime
from sqlalchemy import Column, Index, MetaData, String, Table

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    # Stored normalised (userd.domain.validation.normalize_email), so this index is the
    # case-insensitive uniqueness rule on both backends.
    Column("email", String(254), nullable=False),
    Column("name", String(100), nullable=False),
    Column("password_hash", String(100), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ux_users_email", "email", unique=True),
)
