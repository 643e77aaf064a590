"""gRPC target names (https://github.com/grpc/grpc/blob/master/doc/naming.md), checked when the
configuration is read: a value gRPC cannot resolve is a start-up error naming the variable, not a
service that reports SERVING and then fails every call.

Accepted: `host:port`, `[ipv6]:port`, `dns:[//authority/]host[:port]`, `ipv4:addr:port[,addr:port…]`,
`ipv6:[addr]:port[,…]`, `unix:path` and `unix:///absolute/path`.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from grpcdemo.runtime.config import ConfigError

_HOST: Final = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def _port(name: str, raw: str, text: str) -> None:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise ConfigError(f"{name}={raw!r}: port {text!r} must be a number in 1..65535")


def _host_port(name: str, raw: str, text: str, *, port_required: bool) -> None:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: {host!r} is not an IPv6 address") from None
        if rest:
            if not rest.startswith(":"):
                raise ConfigError(f"{name}={raw!r}: expected [IPv6]:PORT")
            _port(name, raw, rest[1:])
        elif port_required:
            raise ConfigError(f"{name}={raw!r}: a port is required, e.g. [::1]:50051")
        return
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, ""
    if not host or not _HOST.fullmatch(host):
        raise ConfigError(f"{name}={raw!r}: {host!r} is not a host name or IPv4 address")
    if port:
        _port(name, raw, port)
    elif port_required:
        raise ConfigError(f"{name}={raw!r}: a port is required, e.g. {host}:50051")


def parse_grpc_target(name: str, raw: str) -> str:
    """`raw`, stripped, if gRPC can use it as a client target; else ConfigError naming `name`."""
    target = raw.strip()
    if not target:
        raise ConfigError(f"{name} is empty")
    scheme, sep, rest = target.partition(":")
    if scheme == "dns" and sep:
        # dns:host:port, dns:///host:port, dns://authority/host:port
        if rest.startswith("//"):
            _authority, slash, rest = rest[2:].partition("/")
            if not slash:
                raise ConfigError(f"{name}={raw!r}: expected dns:///host:port or dns://authority/host:port")
        _host_port(name, raw, rest, port_required=False)
        return target
    if scheme in ("ipv4", "ipv6") and sep:
        addresses = rest.split(",")
        for address in addresses:
            if scheme == "ipv4":
                host, colon, port = address.rpartition(":")
                try:
                    ipaddress.IPv4Address(host)
                except ValueError:
                    raise ConfigError(f"{name}={raw!r}: {address!r} is not IPV4:PORT") from None
                _port(name, raw, port if colon else "")
            else:
                if not address.startswith("["):
                    raise ConfigError(f"{name}={raw!r}: {address!r} is not [IPV6]:PORT")
                _host_port(name, raw, address, port_required=True)
        return target
    if scheme in ("unix", "unix-abstract") and sep:
        if not rest or rest == "//":
            raise ConfigError(f"{name}={raw!r}: expected unix:path or unix:///absolute/path")
        return target
    _host_port(name, raw, target, port_required=True)
    return target
