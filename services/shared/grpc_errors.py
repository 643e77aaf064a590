"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from shared.errors import DomainError, ErrorKind

STATUS_FOR_KIND: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
}

S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def status_for(error: DomainError) -> grpc.StatusCode:
    return STATUS_FOR_KIND[error.kind]


def grpc_errors(
    logger: logging.Logger,
) -> Callable[
    [Callable[[S, Req, grpc.aio.ServicerContext], Awaitable[Resp]]],
    Callable[[S, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
]:
    """Decorate an async unary servicer method so no call ever ends UNKNOWN: domain errors abort with
    their status and message, anything unexpected is logged (the log line carries the trace id) and
    answered INTERNAL without leaking its text."""

    def decorate(
        method: Callable[[S, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
    ) -> Callable[[S, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
        @functools.wraps(method)
        async def wrapper(self: S, request: Req, context: grpc.aio.ServicerContext) -> Resp:
            try:
                return await method(self, request, context)
            except DomainError as error:
                await context.abort(status_for(error), error.message)
            except grpc.aio.AbortError:
                raise
            except Exception:
                logger.exception("unhandled error in %s", method.__name__)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            raise AssertionError("unreachable: context.abort always raises")

        return wrapper

    return decorate


def bearer_token(context: grpc.aio.ServicerContext) -> str | None:
    """The token of `authorization: Bearer <token>` metadata; "" when the header is present but
    malformed, None when it is absent (the two are told apart in business metrics)."""
    for key, value in context.invocation_metadata() or ():
        if key.lower() != "authorization":
            continue
        text = value.decode() if isinstance(value, bytes) else str(value)
        scheme, _, token = text.strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return None


def auth_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


__all__ = ["auth_metadata", "bearer_token", "grpc_errors", "status_for"]
