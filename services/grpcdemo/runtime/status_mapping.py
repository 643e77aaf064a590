"""Error mapping, the error hook of the handler wrapper: what a handler raised becomes the status
that names its cause. Domain errors carry their kind; anything else is a bug in this code, logged
with its traceback (and the trace id) and answered INTERNAL without its text."""

from __future__ import annotations

import logging
from typing import Final

import grpc

from grpcdemo.errors import DomainError, ErrorKind

log = logging.getLogger(__name__)

STATUS_FOR_KIND: Final[dict[ErrorKind, grpc.StatusCode]] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def status_for(error: DomainError) -> grpc.StatusCode:
    return STATUS_FOR_KIND[error.kind]


def map_error(path: str, error: Exception) -> tuple[grpc.StatusCode, str]:
    if isinstance(error, DomainError):
        return status_for(error), error.message
    log.error("unhandled error in %s", path, exc_info=error)
    return grpc.StatusCode.INTERNAL, "internal error"


__all__ = ["STATUS_FOR_KIND", "map_error", "status_for"]
