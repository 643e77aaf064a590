"""The status code a client receives, derived from what a server handler did.

Inside a wrapping interceptor grpc.aio shows the outcome only indirectly:
- handler returned: `context.code()` if set, else OK (a unary handler returning None is a special
  case, see `code_of_none_response`);
- `context.abort(code)`: `grpc.aio.AbortError`, with `context.code()` set to `code`;
- any other exception: the code set with `set_code` if not OK, else Unknown (grpc sends exactly that);
- `asyncio.CancelledError` (or, for a response stream the server stopped consuming,
  `GeneratorExit`): DeadlineExceeded when the deadline is (about) reached, else Canceled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import grpc

from grpcdemo.observability.grpc_names import CANCELED, DEADLINE_EXCEEDED, OK, UNKNOWN, go_code_name

# A client's deadline fires on the client, which cancels the call; the server's copy of the deadline
# was computed when the request arrived, so it can still show the transit and queueing time left
# (0-1.5 ms measured on loopback here, more under load). A cancellation this close to the deadline is
# counted as DeadlineExceeded, which is what the client saw.
DEADLINE_SLACK_SECONDS: Final = 0.05


def code_on_interruption(time_remaining: float | None) -> str:
    """The handler was cancelled: by the deadline (or the client reacting to it), or by the client."""
    if time_remaining is not None and time_remaining <= DEADLINE_SLACK_SECONDS:
        return DEADLINE_EXCEEDED
    return CANCELED


def code_on_exception(exc: BaseException, code_set: object) -> str:
    if isinstance(exc, grpc.aio.AbortError):
        return go_code_name(code_set)
    if code_set is None or code_set == grpc.StatusCode.OK:
        return UNKNOWN
    return go_code_name(code_set)


def code_on_return(code_set: object) -> str:
    return OK if code_set is None else go_code_name(code_set)


def code_of_none_response(serializer: Callable[[Any], bytes] | None) -> str:
    """A unary handler returned None with an OK status. Without a serializer grpc sends an empty
    message; a serializer that rejects None (protobuf's does) makes grpc answer Unknown. Asked here,
    on this rare path only, because it happens after the handler returns, out of the wrapper's sight."""
    if serializer is None:
        return OK
    try:
        serializer(None)
    except Exception:
        return UNKNOWN
    return OK
