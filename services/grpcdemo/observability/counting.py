"""Iterators that report each message passing through them, for the streams of both sides."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

OnMessage = Callable[[], None]


class CountingAsyncIterator:
    """Counts each message taken from an async iterable.

    A class rather than an async generator: one left unfinished (a caller that stops reading) needs
    no finalisation by the event loop.
    """

    __slots__ = ("_iterable", "_iterator", "_on_message")

    def __init__(self, iterable: AsyncIterable[Any], on_message: OnMessage) -> None:
        self._iterable = iterable
        self._iterator: AsyncIterator[Any] | None = None
        self._on_message = on_message

    def __aiter__(self) -> CountingAsyncIterator:
        return self

    async def __anext__(self) -> Any:
        # Created on first use: asking a grpc call for its iterator commits it to the iterator API.
        if self._iterator is None:
            self._iterator = self._iterable.__aiter__()
        message = await self._iterator.__anext__()
        self._on_message()
        return message


class CountingIterator:
    """Counts each message taken from a (sync) iterable."""

    __slots__ = ("_iterator", "_on_message")

    def __init__(self, iterable: Any, on_message: OnMessage) -> None:
        self._iterator = iter(iterable)
        self._on_message = on_message

    def __iter__(self) -> CountingIterator:
        return self

    def __next__(self) -> Any:
        message = next(self._iterator)
        self._on_message()
        return message


def counting(iterable: Any, on_message: OnMessage) -> CountingAsyncIterator | CountingIterator:
    """grpc.aio accepts both kinds of request iterable; the wrapper keeps the kind."""
    if isinstance(iterable, AsyncIterable):
        return CountingAsyncIterator(iterable, on_message)
    return CountingIterator(iterable, on_message)
