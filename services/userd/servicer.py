"""gRPC entry for UserService: protobuf in, a call into Accounts, protobuf out."""

from __future__ import annotations

import logging

import grpc
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc
from grpcdemo.runtime.auth_metadata import bearer_token
from grpcdemo.runtime.proto_time import to_timestamp

from userd.domain.accounts import Accounts
from userd.domain.models import User
from userd.metrics import UserdMetrics

log = logging.getLogger(__name__)


def user_message(user: User) -> user_pb2.User:
    return user_pb2.User(
        id=user.id, email=user.email, name=user.name, created_at=to_timestamp(user.created_at)
    )


class UserServicer(user_pb2_grpc.UserServiceServicer):
    def __init__(self, accounts: Accounts, metrics: UserdMetrics) -> None:
        self._accounts = accounts
        self._metrics = metrics

    async def Register(
        self, request: user_pb2.RegisterRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.RegisterResponse:
        with self._metrics.register.recording():
            user = await self._accounts.register(request.email, request.password, request.name)
        log.info("user registered", extra={"user_id": user.id})
        return user_pb2.RegisterResponse(user=user_message(user))

    async def Login(
        self, request: user_pb2.LoginRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.LoginResponse:
        with self._metrics.login.recording():
            issued = await self._accounts.login(request.email, request.password)
        return user_pb2.LoginResponse(access_token=issued.token, expires_at=to_timestamp(issued.expires_at))

    async def Me(self, request: user_pb2.MeRequest, context: grpc.aio.ServicerContext) -> user_pb2.MeResponse:
        with self._metrics.me.recording():
            user = await self._accounts.me(bearer_token(context))
        return user_pb2.MeResponse(user=user_message(user))
