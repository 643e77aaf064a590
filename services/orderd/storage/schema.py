"""The orders and order_items tables, as the migrations create them (migrations/versions/)."""

from __future__ import annotations

from grpcdemo.persistence.database import UTCDateTime
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("request_fingerprint", String(64), nullable=False),
    Column("total_cents", BigInteger(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Decides races between concurrent retries of one creation request.
    UniqueConstraint("user_id", "request_id", name="uq_orders_user_request"),
    Index("ix_orders_user_created", "user_id", "created_at", "id"),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", String(36), ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer(), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("quantity", Integer(), nullable=False),
    Column("unit_price_cents", BigInteger(), nullable=False),
)
