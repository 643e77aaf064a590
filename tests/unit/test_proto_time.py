"""Timestamps in responses are exact: the same as protobuf's own conversion, to the microsecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpcdemo.runtime.proto_time import to_timestamp
from hypothesis import given
from hypothesis import strategies as st


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)))
def test_same_as_protobufs_conversion(value: datetime) -> None:
    expected = Timestamp()
    expected.FromDatetime(value)
    assert to_timestamp(value) == expected
    assert to_timestamp(value).ToDatetime(tzinfo=UTC) == value


def test_other_offsets_are_converted_and_naive_refused() -> None:
    local = datetime(2026, 12, 5, 6, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert to_timestamp(local).ToDatetime(tzinfo=UTC) == datetime(2026, 12, 5, 4, 0, 0, 123456, tzinfo=UTC)
    with pytest.raises(ValueError, match="naive"):
        to_timestamp(datetime(2026, 1, 1))
