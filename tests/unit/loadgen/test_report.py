"""The summary table and its JSON twin."""

from __future__ import annotations

import json
from pathlib import Path

import grpc

from loadgen.kinds import Rpc
from loadgen.report import Summary, format_table, rpc_summaries, write_json
from loadgen.stats import Recorder


def sample_summary() -> Summary:
    recorder = Recorder()
    for n in range(1, 101):
        recorder.record(Rpc.ME, grpc.StatusCode.OK, n / 1000, expected=True)
    for _ in range(3):
        recorder.record(Rpc.CREATE_ORDER, grpc.StatusCode.UNAVAILABLE, 0.25, expected=False)
    recorder.record(Rpc.CREATE_ORDER, grpc.StatusCode.INVALID_ARGUMENT, 0.002, expected=True)
    rows, total = rpc_summaries(recorder, seconds=10.0)
    return Summary(
        scenario="outage",
        seed=42,
        arrivals="poisson",
        target_rps=10.5,
        duration_s=10.0,
        sent=105,
        dropped=1,
        cancelled=0,
        achieved_rps=10.5,
        unexpected=recorder.unexpected,
        rpcs=rows,
        total=total,
        created_orders=0,
        idempotent_replays_matched=0,
        idempotent_replays_mismatched=0,
    )


def test_rows_per_rpc_in_a_fixed_order_with_percentiles_and_codes() -> None:
    summary = sample_summary()
    assert [row.rpc for row in summary.rpcs] == ["Me", "CreateOrder"]
    me, create = summary.rpcs
    assert (me.count, me.rate, me.unexpected, me.codes) == (100, 10.0, 0, {"OK": 100})
    assert abs(me.p50_ms - 50.0) <= 0.5
    assert abs(me.p90_ms - 90.0) <= 0.9
    assert abs(me.p99_ms - 99.0) <= 1.0
    assert me.max_ms == 100.0
    assert create.codes == {"InvalidArgument": 1, "Unavailable": 3}
    assert create.unexpected == 3
    assert summary.total.count == 104
    assert summary.total.codes == {"InvalidArgument": 1, "OK": 100, "Unavailable": 3}
    assert summary.total.max_ms == 250.0


def test_table_shows_every_figure() -> None:
    table = format_table(sample_summary())
    assert "scenario outage  seed 42  arrivals poisson  target 10.5/s" in table
    assert "dropped (max in flight) 1" in table
    lines = {
        line.split()[0]: line
        for line in table.splitlines()
        if line and line.split()[0] in {"Me", "CreateOrder", "total"}
    }
    assert lines["Me"].split()[1:3] == ["100", "10.0"]
    assert lines["Me"].endswith("OK=100")
    assert "InvalidArgument=1 Unavailable=3" in lines["CreateOrder"]
    assert lines["CreateOrder"].split()[7] == "3"
    assert lines["total"].split()[1] == "104"
    assert "intended send time" in table


def test_json_has_the_same_figures(tmp_path: Path) -> None:
    summary = sample_summary()
    path = tmp_path / "out" / "summary.json"
    write_json(summary, path)
    data = json.loads(path.read_text())
    assert data["scenario"] == "outage"
    assert data["seed"] == 42
    assert data["dropped"] == 1
    assert [row["rpc"] for row in data["rpcs"]] == ["Me", "CreateOrder"]
    assert data["rpcs"][1]["codes"] == {"InvalidArgument": 1, "Unavailable": 3}
    assert data["total"]["count"] == 104
    assert set(data["rpcs"][0]) == {
        "rpc",
        "count",
        "rate",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "unexpected",
        "codes",
    }
