from __future__ import annotations

from collections.abc import AsyncIterator

from grpcdemo.observability.counting import CountingAsyncIterator, CountingIterator, counting


class Tally:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def produce(count: int) -> AsyncIterator[int]:
    for index in range(count):
        yield index


async def test_async_iterables_are_counted_as_they_are_consumed() -> None:
    tally = Tally()
    wrapped = counting(produce(3), tally)
    assert isinstance(wrapped, CountingAsyncIterator)
    assert tally.count == 0
    assert [item async for item in wrapped] == [0, 1, 2]
    assert tally.count == 3


async def test_partially_consumed_stream_counts_only_what_was_taken() -> None:
    tally = Tally()
    wrapped = CountingAsyncIterator(produce(10), tally)
    assert await wrapped.__anext__() == 0
    assert await wrapped.__anext__() == 1
    assert tally.count == 2


def test_sync_iterables_stay_sync() -> None:
    tally = Tally()
    wrapped = counting([b"a", b"b"], tally)
    assert isinstance(wrapped, CountingIterator)
    assert list(wrapped) == [b"a", b"b"]
    assert tally.count == 2
