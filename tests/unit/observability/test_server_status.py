from __future__ import annotations

import grpc
import pytest
from grpcdemo.observability.server_status import (
    DEADLINE_SLACK_SECONDS,
    code_of_none_response,
    code_on_exception,
    code_on_interruption,
    code_on_return,
)


@pytest.mark.parametrize(
    ("time_remaining", "code"),
    [
        (0.0, "DeadlineExceeded"),
        # The client's own deadline fired and cancelled the call while the server's copy, taken on
        # arrival, still showed a little time left.
        (0.0012, "DeadlineExceeded"),
        (DEADLINE_SLACK_SECONDS, "DeadlineExceeded"),
        (DEADLINE_SLACK_SECONDS + 0.001, "Canceled"),
        (4.5, "Canceled"),
        (None, "Canceled"),  # no deadline at all
    ],
)
def test_interruption(time_remaining: float | None, code: str) -> None:
    assert code_on_interruption(time_remaining) == code


def test_slack_is_small_against_the_services_deadlines() -> None:
    assert 0.005 <= DEADLINE_SLACK_SECONDS <= 0.1


@pytest.mark.parametrize(
    ("exc", "code_set", "code"),
    [
        (grpc.aio.AbortError("aborted"), grpc.StatusCode.NOT_FOUND, "NotFound"),
        (RuntimeError("boom"), None, "Unknown"),
        (RuntimeError("boom"), grpc.StatusCode.OK, "Unknown"),
        (RuntimeError("boom"), grpc.StatusCode.PERMISSION_DENIED, "PermissionDenied"),
        (grpc.aio.AbortError("aborted"), None, "Unknown"),
    ],
)
def test_exception(exc: BaseException, code_set: object, code: str) -> None:
    assert code_on_exception(exc, code_set) == code


def test_return() -> None:
    assert code_on_return(None) == "OK"
    assert code_on_return(grpc.StatusCode.OK) == "OK"
    assert code_on_return(grpc.StatusCode.ALREADY_EXISTS) == "AlreadyExists"


def test_none_response_depends_on_the_serializer() -> None:
    assert code_of_none_response(None) == "OK"
    assert code_of_none_response(bytes) == "Unknown"
    assert code_of_none_response(lambda message: b"" if message is None else bytes(message)) == "OK"
