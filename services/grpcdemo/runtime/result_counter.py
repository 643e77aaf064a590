"""Business counters with one bounded `result` label, and recording them around a use case."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter

from grpcdemo.errors import DomainError


class ResultCounter:
    """`results` is the complete set of label values, all created at start-up so rate() and alerts
    see zeros rather than absent series. Errors whose reason is not in the set, and cancelled calls,
    count as `fallback` (e.g. orderd's `failed`), or are not counted when there is none."""

    def __init__(
        self,
        name: str,
        doc: str,
        results: tuple[str, ...],
        registry: CollectorRegistry,
        *,
        fallback: str | None = None,
    ) -> None:
        if fallback is not None and fallback not in results:
            raise ValueError(f"fallback {fallback!r} is not one of {results}")
        counter = Counter(name, doc, ["result"], registry=registry)
        self._children = {result: counter.labels(result=result) for result in results}
        self._fallback = fallback

    def record(self, result: str) -> None:
        self._children[result].inc()

    def record_error(self, error: BaseException) -> None:
        reason = error.reason if isinstance(error, DomainError) else None
        result = reason if reason in self._children else self._fallback
        if result is not None:
            self._children[result].inc()

    @contextmanager
    def recording(self, success: str = "success") -> Iterator[None]:
        try:
            yield
        except (Exception, asyncio.CancelledError) as error:
            # CancelledError is a BaseException, yet a client cancel or a passed deadline ends the
            # call (grpc_server_handled_total counts it), so it counts too: as the fallback result.
            self.record_error(error)
            raise
        self.record(success)
