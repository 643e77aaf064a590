"""Drives the services from a client that knows nothing but what server reflection tells it: no
generated Python stubs, so the wire contract (names, fields, metadata) is what is tested."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.support.services import Stack


class ReflectionClient:
    def __init__(self, target: str) -> None:
        self._channel = grpc.insecure_channel(target)
        self._pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(self._channel))

    def services(self) -> list[str]:
        database = ProtoReflectionDescriptorDatabase(self._channel)
        return list(database.get_services())

    def call(
        self, service: str, method: str, body: dict[str, Any], token: str | None = None
    ) -> tuple[grpc.StatusCode, dict[str, Any]]:
        method_desc = self._pool.FindServiceByName(service).FindMethodByName(method)
        request_cls = message_factory.GetMessageClass(method_desc.input_type)
        response_cls = message_factory.GetMessageClass(method_desc.output_type)
        stub: Callable[..., Any] = self._channel.unary_unary(
            f"/{service}/{method}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_cls.FromString,
        )
        metadata = (("authorization", f"Bearer {token}"),) if token else None
        try:
            response = stub(json_format.ParseDict(body, request_cls()), metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            return error.code(), {}
        return grpc.StatusCode.OK, json_format.MessageToDict(response, preserving_proto_field_name=True)

    def close(self) -> None:
        self._channel.close()


async def test_flow_through_reflection_only(stack: Stack) -> None:
    user_client = ReflectionClient(f"127.0.0.1:{stack.userd.port}")
    order_client = ReflectionClient(f"127.0.0.1:{stack.orderd.port}")
    run = asyncio.to_thread
    try:
        assert "user.v1.UserService" in await run(user_client.services)
        assert "grpc.health.v1.Health" in await run(user_client.services)
        assert "order.v1.OrderService" in await run(order_client.services)

        code, registered = await run(
            user_client.call,
            "user.v1.UserService",
            "Register",
            {"email": "wire@example.com", "password": "wire-password", "name": "Wire"},
        )
        assert code == grpc.StatusCode.OK
        assert set(registered["user"]) == {"id", "email", "name", "created_at"}
        code, login = await run(
            user_client.call,
            "user.v1.UserService",
            "Login",
            {"email": "wire@example.com", "password": "wire-password"},
        )
        assert code == grpc.StatusCode.OK and set(login) == {"access_token", "expires_at"}
        token = login["access_token"]

        code, me = await run(user_client.call, "user.v1.UserService", "Me", {}, token)
        assert me["user"]["id"] == registered["user"]["id"]

        code, created = await run(
            order_client.call,
            "order.v1.OrderService",
            "CreateOrder",
            {"request_id": "w1", "items": [{"sku": "S-1", "quantity": 3, "unit_price_cents": "700"}]},
            token,
        )
        assert code == grpc.StatusCode.OK
        order = created["order"]
        assert set(order) == {"id", "user_id", "items", "total_cents", "status", "created_at"}
        assert order["total_cents"] == "2100"  # int64 is a string in proto JSON
        assert order["status"] == "ORDER_STATUS_CREATED"

        code, got = await run(
            order_client.call, "order.v1.OrderService", "GetOrder", {"order_id": order["id"]}, token
        )
        assert got["order"] == order
        code, listed = await run(
            order_client.call, "order.v1.OrderService", "ListOrders", {"page_size": 10}, token
        )
        assert [o["id"] for o in listed["orders"]] == [order["id"]]

        code, _ = await run(order_client.call, "order.v1.OrderService", "ListOrders", {})
        assert code == grpc.StatusCode.UNAUTHENTICATED
    finally:
        user_client.close()
        order_client.close()
