"""Authenticates orderd's callers by asking userd (UserService.Me) with the caller's own token.

This is the service-to-service hop that the gRPC client metrics measure. Its deadline is the
caller's remaining time capped by AUTH_TIMEOUT_SECONDS, so a slow or dead userd turns into a fast
DEADLINE_EXCEEDED or UNAVAILABLE for the caller, never a hang."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpcdemo.errors import DependencyTimeout, DependencyUnavailable, Unauthenticated
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc
from grpcdemo.runtime.auth_metadata import auth_metadata
from grpcdemo.runtime.config import HostPort

# Reconnect quickly once userd is back: gRPC's default backoff grows to two minutes, which would
# keep orderd failing long after userd recovered.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


class MissingCredentials(Unauthenticated):
    pass


def open_channel(addr: HostPort, interceptors: Sequence[grpc.aio.ClientInterceptor] = ()) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(str(addr), options=CHANNEL_OPTIONS, interceptors=list(interceptors))


class UserdAuthenticator:
    def __init__(self, channel: grpc.aio.Channel, timeout_seconds: float) -> None:
        self._users = user_pb2_grpc.UserServiceStub(channel)  # type: ignore[no-untyped-call]
        self._timeout = timeout_seconds

    async def user_id(self, token: str | None, caller_time_remaining: float | None) -> str:
        if token is None:
            # Nothing to verify: no need to spend a round trip to userd.
            raise MissingCredentials("missing `authorization: Bearer <token>` metadata")
        timeout = self._timeout
        if caller_time_remaining is not None:
            timeout = min(timeout, caller_time_remaining)
        if timeout <= 0:
            raise DependencyTimeout("deadline exceeded before authentication")
        try:
            response = await self._users.Me(
                user_pb2.MeRequest(), metadata=auth_metadata(token), timeout=timeout
            )
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                raise Unauthenticated("access token is invalid or expired") from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise DependencyTimeout("authentication service did not answer in time") from None
            raise DependencyUnavailable("authentication service unavailable; retry later") from None
        user_id: str = response.user.id
        return user_id
