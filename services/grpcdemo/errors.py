"""Domain errors, free of gRPC: each names the status class it belongs to and a bounded `reason`
that business metrics use as a label value. The gRPC layer maps them to status codes in one place
(grpcdemo.runtime.status_mapping)."""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    INVALID_ARGUMENT = "invalid_argument"
    UNAUTHENTICATED = "unauthenticated"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    FAILED_PRECONDITION = "failed_precondition"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"


class DomainError(Exception):
    """Base of every expected failure. `message` is safe to show the caller."""

    kind: ErrorKind = ErrorKind.FAILED_PRECONDITION
    reason: str = "failed"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class InvalidInput(DomainError):
    kind = ErrorKind.INVALID_ARGUMENT
    reason = "invalid_input"


class Unauthenticated(DomainError):
    kind = ErrorKind.UNAUTHENTICATED
    reason = "unauthenticated"


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND
    reason = "not_found"


class AlreadyExists(DomainError):
    kind = ErrorKind.ALREADY_EXISTS
    reason = "already_exists"


class Conflict(DomainError):
    kind = ErrorKind.FAILED_PRECONDITION
    reason = "conflict"


class DependencyUnavailable(DomainError):
    kind = ErrorKind.UNAVAILABLE
    reason = "unavailable"


class Overloaded(DomainError):
    """Out of capacity right now: the caller should retry later."""

    kind = ErrorKind.RESOURCE_EXHAUSTED
    reason = "overloaded"


class DependencyTimeout(DomainError):
    kind = ErrorKind.DEADLINE_EXCEEDED
    reason = "deadline_exceeded"
