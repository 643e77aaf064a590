"""`grpc-healthcheck HOST:PORT [SERVICE]`: exit 0 when the gRPC health service answers SERVING.
Used by compose healthchecks, where no grpc_health_probe binary is available."""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def check(target: str, service: str, timeout_seconds: float) -> bool:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = await stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_seconds
            )
        except grpc.aio.AioRpcError as error:
            print(f"unhealthy: {error.code().name} {error.details()}", file=sys.stderr)
            return False
    serving: bool = response.status == health_pb2.HealthCheckResponse.SERVING
    if not serving:
        print(
            f"unhealthy: {health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)}",
            file=sys.stderr,
        )
    return serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", help="HOST:PORT of the gRPC server")
    parser.add_argument("service", nargs="?", default="", help="service name ('' = whole server)")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    return 0 if asyncio.run(check(args.target, args.service, args.timeout)) else 1


if __name__ == "__main__":
    sys.exit(main())
