"""orderd configuration, parsed and validated once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from grpcdemo.runtime.channels import LB_POLICIES
from grpcdemo.runtime.config import CommonConfig, Env, read_common
from grpcdemo.runtime.targets import parse_grpc_target


@dataclass(frozen=True)
class OrderdConfig:
    common: CommonConfig
    userd_addr: str
    userd_lb_policy: str
    auth_timeout_seconds: float
    migrate_on_start: bool


def load(environ: Mapping[str, str] | None = None) -> OrderdConfig:
    env = Env(os.environ if environ is None else environ)
    return OrderdConfig(
        common=read_common(
            env, service_name="orderd", grpc_default="127.0.0.1:50052", metrics_default="127.0.0.1:9092"
        ),
        # Any gRPC target; one that resolves to several addresses (dns:///userd:50051 in compose,
        # ipv4:a:p,b:p, a headless Kubernetes Service) is balanced call by call.
        userd_addr=parse_grpc_target("USERD_ADDR", env.string("USERD_ADDR", "127.0.0.1:50051")),
        userd_lb_policy=env.choice("USERD_LB_POLICY", "round_robin", LB_POLICIES),
        auth_timeout_seconds=env.number("AUTH_TIMEOUT_SECONDS", 2.0, minimum=0.05, maximum=30.0),
        migrate_on_start=env.boolean("MIGRATE_ON_START", True),
    )
