"""USERD_ADDR takes any target gRPC can resolve, checked against gRPC's naming grammar at start-up."""

from __future__ import annotations

import pytest
from grpcdemo.runtime.config import ConfigError
from grpcdemo.runtime.targets import parse_grpc_target


@pytest.mark.parametrize(
    "value",
    [
        "127.0.0.1:50051",
        "userd:50051",
        "[::1]:50051",
        "dns:///userd:50051",
        "dns:userd:50051",
        "dns://8.8.8.8/userd.default.svc.cluster.local:50051",
        "ipv4:127.0.0.1:50051,127.0.0.1:50061",
        "ipv6:[::1]:50051,[::1]:50061",
        "unix:/tmp/userd.sock",
        "unix:///tmp/userd.sock",
        "  userd:50051  ",
    ],
)
def test_targets_grpc_resolves_are_accepted(value: str) -> None:
    assert parse_grpc_target("USERD_ADDR", value) == value.strip()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "ipv4:127.0.0.1",
        "ipv4:localhost:50051",
        "ipv4:127.0.0.1:1,",
        "http://userd:50051",
        "dns:///",
        "userd:notaport",
        "userd:70000",
        "unix:",
        "user d:50051",
    ],
)
def test_targets_grpc_cannot_use_name_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="USERD_ADDR"):
        parse_grpc_target("USERD_ADDR", value)
