"""Command-line parsing and --explain."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadgen.config import LoadgenConfig, parse
from loadgen.explain import explain
from loadgen.scenarios import SCENARIOS


def test_defaults_match_the_contract() -> None:
    config = parse([], environ={})
    assert config == LoadgenConfig()
    assert (config.scenario, config.users, config.arrivals) == ("steady", 20, "poisson")
    assert config.pool_file == Path(".data/loadgen-users.json")
    assert (config.target_userd, config.target_orderd) == ("127.0.0.1:50051", "127.0.0.1:50052")
    assert (config.userd_admin, config.orderd_admin) == ("http://127.0.0.1:9091", "http://127.0.0.1:9092")
    assert config.metrics_addr == "127.0.0.1:9097"
    assert config.duration is None
    assert config.fault_token is None


def test_options_and_token_from_environment() -> None:
    config = parse(
        [
            "--scenario",
            "spike",
            "--rps",
            "7.5",
            "--duration",
            "30",
            "--seed",
            "3",
            "--arrivals",
            "constant",
            "--metrics-addr",
            "0",
            "--json",
            "out.json",
            "--spike-factor",
            "3",
            "--spike-start",
            "5",
            "--spike-length",
            "10",
        ],
        environ={"FAULT_INJECTION_TOKEN": "from-env"},
    )
    assert (config.scenario, config.rps, config.duration, config.seed) == ("spike", 7.5, 30.0, 3)
    assert config.arrivals == "constant"
    assert config.metrics_addr == "0"
    assert config.json_path == Path("out.json")
    assert (config.spike.factor, config.spike.start, config.spike.length) == (3, 5, 10)
    assert config.fault_token == "from-env"
    assert parse(["--fault-token", "flag"], environ={"FAULT_INJECTION_TOKEN": "env"}).fault_token == "flag"
    # The token is a secret: never in a repr that could reach a log line.
    assert "from-env" not in repr(config)


@pytest.mark.parametrize(
    "argv",
    [
        ["--rps", "0"],
        ["--rps", "-1"],
        ["--users", "0"],
        ["--max-in-flight", "0"],
        ["--scenario", "nope"],
        ["--arrivals", "burst"],
        ["--userd-admin", "file:///etc/passwd"],
        ["--orderd-admin", "127.0.0.1:9092"],
    ],
)
def test_invalid_values_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse(argv, environ={})


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_explain_describes_each_scenario(name: str) -> None:
    text = explain(parse(["--scenario", name], environ={}))
    assert f"scenario {name}" in text
    assert "create_order" in text
    if SCENARIOS[name].faults:
        assert "PUT /admin/faults" in text


def test_explain_shows_the_default_shares_and_no_cap() -> None:
    text = explain(parse([], environ={}))
    assert " 31.00%  me " in text
    assert "  0.50%  login_wrong_password " in text
    assert "at most" not in text
