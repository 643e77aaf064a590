"""Label values shared by server and client metrics, spelled the way go-grpc-middleware spells them so
dashboards and alert rules written for Go services work unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import grpc

GrpcType = Literal["unary", "client_stream", "server_stream", "bidi_stream"]

UNARY: Final = "unary"
CLIENT_STREAM: Final = "client_stream"
SERVER_STREAM: Final = "server_stream"
BIDI_STREAM: Final = "bidi_stream"

# Go's codes.Code.String(); Python's own names (`StatusCode.X.value[1]`) are lower case with spaces
# and spell CANCELLED with two l's, so every code is listed rather than derived.
GO_CODE_NAMES: Final[dict[grpc.StatusCode, str]] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}

OK: Final = "OK"
CANCELED: Final = "Canceled"
UNKNOWN: Final = "Unknown"
DEADLINE_EXCEEDED: Final = "DeadlineExceeded"

# Stands in for service and method names once a process has seen more distinct methods than any real
# service defines (a catch-all generic handler, a client fed arbitrary names): the label stays bounded.
OVERFLOW_NAME: Final = "unknown"


_STATUS_BY_GO_NAME: Final = {name: code for code, name in GO_CODE_NAMES.items()}


def status_code_of(go_name: str) -> grpc.StatusCode:
    """The inverse of go_code_name."""
    return _STATUS_BY_GO_NAME.get(go_name, grpc.StatusCode.UNKNOWN)


def go_code_name(code: object) -> str:
    """Anything that is not a grpc.StatusCode is reported as Unknown, which is what grpc itself
    sends when a handler sets a value it cannot interpret."""
    return GO_CODE_NAMES.get(code, UNKNOWN)


def grpc_type_of(request_streaming: bool, response_streaming: bool) -> GrpcType:
    if request_streaming:
        return BIDI_STREAM if response_streaming else CLIENT_STREAM
    return SERVER_STREAM if response_streaming else UNARY


@dataclass(frozen=True, slots=True)
class MethodName:
    """`/user.v1.UserService/Login` split into the two label values."""

    service: str
    method: str

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"

    @classmethod
    def parse(cls, path: str | bytes) -> MethodName:
        text = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
        service, sep, method = text.lstrip("/").rpartition("/")
        if not sep or not service or not method:
            return cls(OVERFLOW_NAME, OVERFLOW_NAME)
        return cls(service, method)
