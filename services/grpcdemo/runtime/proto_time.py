"""datetime -> google.protobuf.Timestamp, exactly (integer arithmetic) and without the per-call cost
of Timestamp.FromDatetime, which shows in ListOrders' profile (20 orders a page)."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_timestamp(value: datetime) -> Timestamp:
    if value.tzinfo is None:
        raise ValueError("naive datetime: timestamps are UTC")
    delta = value - _EPOCH
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000)
