from __future__ import annotations

import grpc
import pytest
from grpcdemo.observability.grpc_names import GO_CODE_NAMES, MethodName, go_code_name, grpc_type_of

# codes.Code.String() in grpc-go, in numeric order 0..16.
GO_SPELLING = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
]


def test_every_status_code_has_its_go_name() -> None:
    by_number = {code.value[0]: GO_CODE_NAMES[code] for code in grpc.StatusCode}
    assert [by_number[number] for number in range(17)] == GO_SPELLING


def test_values_that_are_not_status_codes_read_as_unknown() -> None:
    assert go_code_name(None) == "Unknown"
    assert go_code_name(5) == "Unknown"
    assert go_code_name(grpc.StatusCode.CANCELLED) == "Canceled"


@pytest.mark.parametrize(
    ("request_streaming", "response_streaming", "expected"),
    [
        (False, False, "unary"),
        (True, False, "client_stream"),
        (False, True, "server_stream"),
        (True, True, "bidi_stream"),
    ],
)
def test_grpc_type(request_streaming: bool, response_streaming: bool, expected: str) -> None:
    assert grpc_type_of(request_streaming, response_streaming) == expected


@pytest.mark.parametrize(
    ("path", "service", "method"),
    [
        ("/user.v1.UserService/Login", "user.v1.UserService", "Login"),
        (b"/order.v1.OrderService/GetOrder", "order.v1.OrderService", "GetOrder"),
        ("/Svc/M", "Svc", "M"),
        ("no-slash", "unknown", "unknown"),
        ("/OnlyService/", "unknown", "unknown"),
        ("", "unknown", "unknown"),
    ],
)
def test_method_name_parse(path: str | bytes, service: str, method: str) -> None:
    name = MethodName.parse(path)
    assert (name.service, name.method) == (service, method)


def test_method_name_round_trips_to_path() -> None:
    assert MethodName.parse("/user.v1.UserService/Me").path == "/user.v1.UserService/Me"
