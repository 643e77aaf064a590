"""Every action the generator can take, the one RPC it calls, and the status code it expects.

An arrival is one action and one RPC, so rates and latencies are per call. "Expected" is what a
healthy system answers: a caller error that comes back as intended is not counted as an error;
anything else (a server fault, a timeout, a wrong caller-error code) is."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import grpc


class Rpc(StrEnum):
    REGISTER = "Register"
    LOGIN = "Login"
    ME = "Me"
    CREATE_ORDER = "CreateOrder"
    GET_ORDER = "GetOrder"
    LIST_ORDERS = "ListOrders"


class Action(StrEnum):
    ME = "me"
    CREATE_ORDER = "create_order"
    # Resends a recent CreateOrder with the same request_id and basket, as a client retry would.
    RETRY_CREATE_ORDER = "retry_create_order"
    GET_ORDER = "get_order"
    LIST_ORDERS = "list_orders"
    LOGIN = "login"
    REGISTER = "register"
    # Caller errors: each produces one business result the services count.
    # A typo of someone logging in (loadgen/accounts.py), usually followed by the right password.
    LOGIN_WRONG_PASSWORD = "login_wrong_password"
    # An attacker's guess at one of a few accounts (the bruteforce scenario).
    LOGIN_GUESS = "login_guess"
    LOGIN_UNKNOWN_EMAIL = "login_unknown_email"
    LOGIN_INVALID_EMAIL = "login_invalid_email"
    REGISTER_EXISTING = "register_existing"
    REGISTER_INVALID = "register_invalid"
    ME_GARBAGE_TOKEN = "me_garbage_token"
    ME_NO_TOKEN = "me_no_token"
    CREATE_ORDER_INVALID = "create_order_invalid"
    CREATE_ORDER_GARBAGE_TOKEN = "create_order_garbage_token"
    GET_ORDER_UNKNOWN = "get_order_unknown"
    LIST_ORDERS_GARBAGE_TOKEN = "list_orders_garbage_token"


_OK = grpc.StatusCode.OK
_UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
_INVALID = grpc.StatusCode.INVALID_ARGUMENT

_LOGIN = "userd_service_login_handler_total"
_REGISTER = "userd_service_register_handler_total"
_ME = "userd_service_me_handler_total"
_ORDERS = "orderd_service_total_orders_total"
_FETCHED = "orderd_service_total_fetched_orders_total"

# action: (RPC, expected status, the business counter and `result` it increments on the service)
CATALOG: Final[dict[Action, tuple[Rpc, grpc.StatusCode, tuple[str, str]]]] = {
    Action.ME: (Rpc.ME, _OK, (_ME, "success")),
    Action.CREATE_ORDER: (Rpc.CREATE_ORDER, _OK, (_ORDERS, "success")),
    # Also orderd_service_idempotent_replays_total.
    Action.RETRY_CREATE_ORDER: (Rpc.CREATE_ORDER, _OK, (_ORDERS, "success")),
    Action.GET_ORDER: (Rpc.GET_ORDER, _OK, (_FETCHED, "success")),
    Action.LIST_ORDERS: (Rpc.LIST_ORDERS, _OK, (_FETCHED, "success")),
    Action.LOGIN: (Rpc.LOGIN, _OK, (_LOGIN, "success")),
    Action.REGISTER: (Rpc.REGISTER, _OK, (_REGISTER, "success")),
    Action.LOGIN_WRONG_PASSWORD: (Rpc.LOGIN, _UNAUTHENTICATED, (_LOGIN, "invalid_password")),
    # "throttled" once the throttle refuses the account: the same answer, counted apart by userd.
    Action.LOGIN_GUESS: (Rpc.LOGIN, _UNAUTHENTICATED, (_LOGIN, "invalid_password")),
    Action.LOGIN_UNKNOWN_EMAIL: (Rpc.LOGIN, _UNAUTHENTICATED, (_LOGIN, "user_not_found")),
    Action.LOGIN_INVALID_EMAIL: (Rpc.LOGIN, _INVALID, (_LOGIN, "invalid_input")),
    Action.REGISTER_EXISTING: (Rpc.REGISTER, grpc.StatusCode.ALREADY_EXISTS, (_REGISTER, "user_exists")),
    Action.REGISTER_INVALID: (Rpc.REGISTER, _INVALID, (_REGISTER, "invalid_input")),
    Action.ME_GARBAGE_TOKEN: (Rpc.ME, _UNAUTHENTICATED, (_ME, "invalid_token")),
    Action.ME_NO_TOKEN: (Rpc.ME, _UNAUTHENTICATED, (_ME, "missing_token")),
    Action.CREATE_ORDER_INVALID: (Rpc.CREATE_ORDER, _INVALID, (_ORDERS, "invalid_input")),
    Action.CREATE_ORDER_GARBAGE_TOKEN: (Rpc.CREATE_ORDER, _UNAUTHENTICATED, (_ORDERS, "unauthenticated")),
    Action.GET_ORDER_UNKNOWN: (Rpc.GET_ORDER, grpc.StatusCode.NOT_FOUND, (_FETCHED, "not_found")),
    Action.LIST_ORDERS_GARBAGE_TOKEN: (Rpc.LIST_ORDERS, _UNAUTHENTICATED, (_FETCHED, "unauthenticated")),
}


def rpc_of(action: Action) -> Rpc:
    return CATALOG[action][0]


def expected_code(action: Action) -> grpc.StatusCode:
    return CATALOG[action][1]


# Go's spelling (codes.Code.String()), as in the services' grpc_code label, so the generator's
# numbers line up with the dashboards. Python's names differ in case and in CANCELLED.
_GO_SPELLING_EXCEPTIONS: Final = {grpc.StatusCode.OK: "OK", grpc.StatusCode.CANCELLED: "Canceled"}


def code_name(code: grpc.StatusCode) -> str:
    special = _GO_SPELLING_EXCEPTIONS.get(code)
    if special is not None:
        return special
    return "".join(part.capitalize() for part in code.name.split("_"))
