"""Authenticates orderd's callers by asking userd (UserService.Me) with the caller's own token.

This is the service-to-service hop that the gRPC client metrics measure. Its deadline is the
caller's remaining time capped by AUTH_TIMEOUT_SECONDS, so a slow or dead userd turns into a fast
UNAVAILABLE for the caller, never a hang.

What the caller sent is checked here first: no `authorization` header, one that is not
`Bearer <token>`, or one longer than MAX_AUTHORIZATION_BYTES is UNAUTHENTICATED without a call to
userd. userd's answers are mapped by cause: a refusal of the caller's token (UNAUTHENTICATED,
INVALID_ARGUMENT, or RESOURCE_EXHAUSTED for metadata too large) is UNAUTHENTICATED; userd out of
reach, out of time, out of capacity or failing is UNAVAILABLE, which is what counts against orderd's
dependency alerts."""

from __future__ import annotations

from typing import Final

import grpc
from grpcdemo.errors import DependencyUnavailable, Unauthenticated
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc
from grpcdemo.runtime.auth_metadata import auth_metadata

# A JWT of this project is ~200 bytes. gRPC servers refuse header blocks over ~8 KiB
# (RESOURCE_EXHAUSTED), which would show a caller's oversized token as a userd failure.
MAX_AUTHORIZATION_BYTES: Final = 4096

_CALLERS_FAULT: Final = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT})


class MissingCredentials(Unauthenticated):
    pass


class MalformedCredentials(Unauthenticated):
    reason = "unauthenticated"


def _metadata_too_large(error: grpc.aio.AioRpcError) -> bool:
    details = (error.details() or "").lower()
    return error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and (
        "metadata" in details or "header" in details
    )


class UserdAuthenticator:
    def __init__(self, channel: grpc.aio.Channel, timeout_seconds: float) -> None:
        self._users = user_pb2_grpc.UserServiceStub(channel)  # type: ignore[no-untyped-call]
        self._timeout = timeout_seconds

    async def user_id(self, token: str | None, caller_time_remaining: float | None) -> str:
        if token is None:
            # Nothing to verify: no need to spend a round trip to userd.
            raise MissingCredentials("missing `authorization: Bearer <token>` metadata")
        if not token:
            raise MalformedCredentials("authorization metadata must be `Bearer <token>`")
        if len(token) > MAX_AUTHORIZATION_BYTES:
            raise MalformedCredentials(f"access token longer than {MAX_AUTHORIZATION_BYTES} bytes")
        timeout = self._timeout
        if caller_time_remaining is not None:
            timeout = min(timeout, caller_time_remaining)
        if timeout <= 0:
            raise DependencyUnavailable("deadline reached before authentication; retry with more time")
        try:
            response = await self._users.Me(
                user_pb2.MeRequest(), metadata=auth_metadata(token), timeout=timeout
            )
        except grpc.aio.AioRpcError as error:
            if error.code() in _CALLERS_FAULT or _metadata_too_large(error):
                raise Unauthenticated("access token is invalid or expired") from None
            if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DependencyUnavailable(
                    "authentication service did not answer in time; retry later"
                ) from None
            raise DependencyUnavailable("authentication service unavailable; retry later") from None
        user_id: str = response.user.id
        return user_id
