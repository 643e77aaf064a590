"""The end-of-run summary: a table per RPC for people, the same figures as JSON for tools."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadgen.kinds import Rpc
from loadgen.stats import LatencyHistogram, Recorder

PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


@dataclass(frozen=True)
class RpcSummary:
    rpc: str
    count: int
    rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    unexpected: int
    codes: dict[str, int]


@dataclass(frozen=True)
class Summary:
    scenario: str
    seed: int
    arrivals: str
    target_rps: float
    duration_s: float
    sent: int
    dropped: int
    cancelled: int
    achieved_rps: float
    unexpected: int
    rpcs: list[RpcSummary]
    total: RpcSummary
    created_orders: int
    idempotent_replays_matched: int
    idempotent_replays_mismatched: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _summarise(
    name: str, histogram: LatencyHistogram, codes: dict[str, int], unexpected: int, seconds: float
) -> RpcSummary:
    ms = {key: round(histogram.percentile(q) * 1000, 3) for key, q in PERCENTILES.items()}
    return RpcSummary(
        rpc=name,
        count=histogram.count,
        rate=round(histogram.count / seconds, 3) if seconds > 0 else 0.0,
        p50_ms=ms["p50"],
        p90_ms=ms["p90"],
        p99_ms=ms["p99"],
        max_ms=round(histogram.max * 1000, 3),
        unexpected=unexpected,
        codes=dict(sorted(codes.items())),
    )


def rpc_summaries(recorder: Recorder, seconds: float) -> tuple[list[RpcSummary], RpcSummary]:
    rows = []
    everything = LatencyHistogram()
    all_codes: dict[str, int] = {}
    for rpc in Rpc:
        stats = recorder.by_rpc.get(rpc)
        if stats is None:
            continue
        rows.append(_summarise(rpc.value, stats.latency, dict(stats.codes), stats.unexpected, seconds))
        everything.merge(stats.latency)
        for code, count in stats.codes.items():
            all_codes[code] = all_codes.get(code, 0) + count
    return rows, _summarise("total", everything, all_codes, recorder.unexpected, seconds)


def format_table(summary: Summary) -> str:
    header = f"{'rpc':<12}{'count':>9}{'rate/s':>9}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}{'errors':>8}  codes"
    lines = [
        f"scenario {summary.scenario}  seed {summary.seed}  arrivals {summary.arrivals}  "
        f"target {summary.target_rps:g}/s  duration {summary.duration_s:.1f}s",
        f"sent {summary.sent}  achieved {summary.achieved_rps:.1f}/s  dropped (max in flight) {summary.dropped}  "
        f"cancelled at stop {summary.cancelled}",
        "",
        header,
        "-" * len(header),
    ]
    for row in [*summary.rpcs, summary.total]:
        if row is summary.total:
            lines.append("-" * len(header))
        codes = " ".join(f"{code}={count}" for code, count in row.codes.items())
        lines.append(
            f"{row.rpc:<12}{row.count:>9}{row.rate:>9.1f}{row.p50_ms:>10.1f}{row.p90_ms:>10.1f}"
            f"{row.p99_ms:>10.1f}{row.max_ms:>10.1f}{row.unexpected:>8}  {codes}"
        )
    lines.append("")
    lines.append(
        "latency is measured from the intended send time; errors = statuses other than the action "
        "expects of a healthy system"
    )
    lines.append(
        f"orders created {summary.created_orders}, idempotent retries answered with the same order "
        f"{summary.idempotent_replays_matched}, with a different one {summary.idempotent_replays_mismatched}"
    )
    return "\n".join(lines)


def write_json(summary: Summary, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary.to_json(), indent=2) + "\n")
