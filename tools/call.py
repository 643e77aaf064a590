"""Call the services from a shell, without grpcurl: `.venv/bin/python tools/call.py --help`.

Prints each answer as JSON (the token alone for `login`, so `TOKEN=$(... login ...)` works); a
failed call prints its status code and message on stderr and exits 1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import grpc
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from grpcdemo.genproto.order.v1 import order_pb2, order_pb2_grpc
from grpcdemo.genproto.user.v1 import user_pb2, user_pb2_grpc
from grpcdemo.runtime.channels import balanced_sync_channel


def item(text: str) -> order_pb2.OrderItem:
    """SKU:QUANTITY:UNIT_PRICE_CENTS, e.g. BOOK-1:2:1250."""
    try:
        sku, quantity, price = text.split(":")
        return order_pb2.OrderItem(sku=sku, quantity=int(quantity), unit_price_cents=int(price))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not SKU:QUANTITY:UNIT_PRICE_CENTS") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--userd", default="127.0.0.1:50051", help="userd's gRPC address (every replica it resolves to)"
    )
    p.add_argument(
        "--orderd", default="127.0.0.1:50052", help="orderd's gRPC address (every replica it resolves to)"
    )
    p.add_argument("--token", default="", help="the access token from `login` (orderd calls and me)")
    commands = p.add_subparsers(dest="command", required=True)
    register = commands.add_parser("register")
    register.add_argument("email")
    register.add_argument("password")
    register.add_argument("name")
    login = commands.add_parser("login", help="prints the access token only")
    login.add_argument("email")
    login.add_argument("password")
    commands.add_parser("me")
    create = commands.add_parser("create-order")
    create.add_argument(
        "--request-id", required=True, help="idempotency key: a retry with it returns the same order"
    )
    create.add_argument("items", nargs="+", type=item, metavar="SKU:QUANTITY:UNIT_PRICE_CENTS")
    get = commands.add_parser("get-order")
    get.add_argument("order_id")
    listing = commands.add_parser("list-orders")
    listing.add_argument("--page-size", type=int, default=0)
    listing.add_argument("--page-token", default="")
    return p


def call(args: argparse.Namespace) -> Message:
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else ()
    with (
        balanced_sync_channel(args.userd) as user_channel,
        balanced_sync_channel(args.orderd) as order_channel,
    ):
        users = user_pb2_grpc.UserServiceStub(user_channel)  # type: ignore[no-untyped-call]
        orders = order_pb2_grpc.OrderServiceStub(order_channel)  # type: ignore[no-untyped-call]
        answer: Message
        if args.command == "register":
            answer = users.Register(
                user_pb2.RegisterRequest(email=args.email, password=args.password, name=args.name), timeout=10
            )
        elif args.command == "login":
            answer = users.Login(user_pb2.LoginRequest(email=args.email, password=args.password), timeout=10)
        elif args.command == "me":
            answer = users.Me(user_pb2.MeRequest(), metadata=metadata, timeout=10)
        elif args.command == "create-order":
            create = order_pb2.CreateOrderRequest(request_id=args.request_id, items=args.items)
            answer = orders.CreateOrder(create, metadata=metadata, timeout=10)
        elif args.command == "get-order":
            answer = orders.GetOrder(
                order_pb2.GetOrderRequest(order_id=args.order_id), metadata=metadata, timeout=10
            )
        else:
            request = order_pb2.ListOrdersRequest(page_size=args.page_size, page_token=args.page_token)
            answer = orders.ListOrders(request, metadata=metadata, timeout=10)
        return answer


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        answer = call(args)
    except grpc.RpcError as error:
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    if args.command == "login":
        print(answer.access_token)  # type: ignore[attr-defined]
    else:
        print(MessageToJson(answer, preserving_proto_field_name=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
