"""Client channels that spread calls over every replica a name resolves to.

gRPC's default policy, pick_first, sends every call of a channel to one address: with compose's DNS
(`userd:50051` answering each replica's address) or a headless Kubernetes Service, one replica would
take all of a client's calls. `round_robin` keeps a connection to every address and rotates call by
call; the channel resolves the name again when a connection drops (a replica stopping, or the
server's GRPC_MAX_CONNECTION_AGE_SECONDS recycling it), so replicas that come and go are followed.
orderd's channel to userd, the load generator and tools/call.py all open theirs here."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

import grpc

LB_POLICIES: Final = ("round_robin", "pick_first")

# Reconnect quickly once a server is back: gRPC's default backoff grows to two minutes, which would
# keep a client failing long after the server recovered.
RECONNECT_OPTIONS: Final = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


def channel_options(lb_policy: str = "round_robin") -> list[tuple[str, object]]:
    if lb_policy not in LB_POLICIES:
        raise ValueError(f"load-balancing policy {lb_policy!r} is not one of {LB_POLICIES}")
    service_config = json.dumps({"loadBalancingConfig": [{lb_policy: {}}]})
    return [*RECONNECT_OPTIONS, ("grpc.service_config", service_config)]


def balanced_channel(
    target: str, interceptors: Sequence[grpc.aio.ClientInterceptor] = (), lb_policy: str = "round_robin"
) -> grpc.aio.Channel:
    """A long-lived aio channel to every address `target` resolves to."""
    return grpc.aio.insecure_channel(
        target, options=channel_options(lb_policy), interceptors=list(interceptors)
    )


def balanced_sync_channel(target: str, lb_policy: str = "round_robin") -> grpc.Channel:
    """The same for blocking clients (tools/call.py)."""
    return grpc.insecure_channel(target, options=channel_options(lb_policy))
