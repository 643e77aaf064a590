"""gRPC entry for OrderService: authenticate through userd, call OrderBook, map to protobuf."""

from __future__ import annotations

import logging

import grpc
from grpcdemo.genproto.order.v1 import order_pb2, order_pb2_grpc
from grpcdemo.runtime.auth_metadata import bearer_token
from grpcdemo.runtime.proto_time import to_timestamp

from orderd.auth import UserdAuthenticator
from orderd.domain.order_book import OrderBook
from orderd.domain.orders import Order, OrderItem, OrderStatus
from orderd.metrics import OrderdMetrics

log = logging.getLogger(__name__)

_STATUS = {OrderStatus.CREATED: order_pb2.ORDER_STATUS_CREATED}


def order_message(order: Order) -> order_pb2.Order:
    return order_pb2.Order(
        id=order.id,
        user_id=order.user_id,
        items=[
            order_pb2.OrderItem(sku=i.sku, quantity=i.quantity, unit_price_cents=i.unit_price_cents)
            for i in order.items
        ],
        total_cents=order.total_cents,
        status=_STATUS[order.status],
        created_at=to_timestamp(order.created_at),
    )


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, book: OrderBook, auth: UserdAuthenticator, metrics: OrderdMetrics) -> None:
        self._book = book
        self._auth = auth
        self._metrics = metrics

    async def _caller(self, context: grpc.aio.ServicerContext) -> str:
        return await self._auth.user_id(bearer_token(context), context.time_remaining())

    async def CreateOrder(
        self, request: order_pb2.CreateOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.CreateOrderResponse:
        with self._metrics.orders.recording():
            user_id = await self._caller(context)
            items = [OrderItem(i.sku, i.quantity, i.unit_price_cents) for i in request.items]
            created = await self._book.create(user_id, request.request_id, items)
        if created.replayed:
            self._metrics.idempotent_replays.inc()
        else:
            log.info("order created", extra={"order_id": created.order.id, "items": len(items)})
        return order_pb2.CreateOrderResponse(order=order_message(created.order))

    async def GetOrder(
        self, request: order_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.GetOrderResponse:
        with self._metrics.fetched.recording():
            user_id = await self._caller(context)
            order = await self._book.get(user_id, request.order_id)
        return order_pb2.GetOrderResponse(order=order_message(order))

    async def ListOrders(
        self, request: order_pb2.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> order_pb2.ListOrdersResponse:
        with self._metrics.fetched.recording():
            user_id = await self._caller(context)
            page = await self._book.list(user_id, request.page_size, request.page_token)
        return order_pb2.ListOrdersResponse(
            orders=[order_message(o) for o in page.orders], next_page_token=page.next_page_token
        )
