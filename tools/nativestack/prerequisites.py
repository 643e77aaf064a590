"""What must be true before the native stack starts: Prometheus, Alertmanager and the blackbox exporter
installed (from the Debian packages, installed here when possible), and the stack's ports free."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from nativestack.components import Component

ALERTMANAGER_BINARIES: Final = ("prometheus-alertmanager", "alertmanager")
PROMETHEUS_PACKAGE: Final = "prometheus"
ALERTMANAGER_PACKAGE: Final = "prometheus-alertmanager"
BLACKBOX_BINARIES: Final = ("prometheus-blackbox-exporter", "blackbox_exporter")
BLACKBOX_PACKAGE: Final = "prometheus-blackbox-exporter"
# On a systemd host the Debian packages enable and start units of the same names, listening on the
# ports this stack needs.
DEBIAN_UNIT_PORTS = {PROMETHEUS_PACKAGE: 9090, ALERTMANAGER_PACKAGE: 9093, BLACKBOX_PACKAGE: 9115}
# Exists only while systemd runs as PID 1 (sd_booted(3)); a container or chroot may have systemctl
# without it, and then `systemctl disable --now` fails.
SYSTEMD_RUN_DIR = Path("/run/systemd/system")

Runner = Callable[..., subprocess.CompletedProcess[Any]]


class StackError(RuntimeError):
    """A problem the user can fix; printed as one line, exit 1."""


def which_any(names: Sequence[str]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def systemd_running() -> bool:
    return shutil.which("systemctl") is not None and SYSTEMD_RUN_DIR.is_dir()


def can_apt_install() -> bool:
    return Path("/etc/debian_version").exists() and os.geteuid() == 0 and shutil.which("apt-get") is not None


def install_commands(packages: Sequence[str], *, systemd: bool) -> list[list[str]]:
    """Installing `packages` for this stack: no Recommends (prometheus would pull in node-exporter and
    more daemons), and on a systemd host the units the packages just started are stopped and disabled
    again, since their daemons hold 9090/9093 (and would come back at every boot)."""
    commands = [["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]]
    if systemd:
        commands.append(["systemctl", "disable", "--now", *packages])
    return commands


def install_packages(packages: Sequence[str], *, systemd: bool, run: Runner = subprocess.run) -> None:
    print(f"installing the Debian package(s) {' '.join(packages)} …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Not fatal: offline or with one broken source, the lists already there may still do.
    run(["apt-get", "update", "-qq"], check=False, env=env)
    install, *disable = install_commands(packages, systemd=systemd)
    result = run(install, check=False, env=env)
    if result.returncode != 0:
        raise StackError(
            f"`{' '.join(install)}` failed with exit code {result.returncode} (its output is above); "
            f"fix that, or install {' '.join(packages)} yourself, and retry"
        )
    for command in disable:
        # Not fatal either: if a unit keeps running, check_ports says so and how to stop it.
        if run(command, check=False).returncode != 0:
            print(f"warning: `{' '.join(command)}` failed", file=sys.stderr, flush=True)


def find_binaries() -> tuple[str, str, str]:
    """(prometheus, alertmanager, blackbox exporter), installing whichever package is missing when that
    is possible."""
    wanted = {
        PROMETHEUS_PACKAGE: ("prometheus",),
        ALERTMANAGER_PACKAGE: ALERTMANAGER_BINARIES,
        BLACKBOX_PACKAGE: BLACKBOX_BINARIES,
    }
    missing = [package for package, names in wanted.items() if which_any(names) is None]
    if missing and can_apt_install():
        install_packages(missing, systemd=systemd_running())
    found: dict[str, str] = {}
    for package, names in wanted.items():
        path = which_any(names)
        if path is None:
            raise StackError(
                f"{names[0]} not found. Install it: on Debian/Ubuntu `sudo apt-get install {package}`; "
                f"elsewhere download it from the Prometheus project and put `{names[0]}` on PATH."
            )
        found[package] = path
    return found[PROMETHEUS_PACKAGE], found[ALERTMANAGER_PACKAGE], found[BLACKBOX_PACKAGE]


def find_grafana(
    env: Mapping[str, str], which: Callable[[str], str | None] = shutil.which
) -> tuple[str, ...] | None:
    """How to start a locally installed Grafana (Debian/RPM package, Homebrew or a tarball), or None:
    Grafana is optional natively. Its home (the folder holding conf/defaults.ini) comes from
    GRAFANA_HOME, else from the usual places next to the binary."""
    for name, subcommand in (("grafana", ("server",)), ("grafana-server", ())):
        binary = which(name)
        if binary is None:
            continue
        resolved = Path(binary).resolve()
        homes = [
            env.get("GRAFANA_HOME", ""),
            "/usr/share/grafana",
            str(resolved.parent.parent / "share" / "grafana"),
            str(resolved.parent.parent),
        ]
        for home in homes:
            if home and (Path(home) / "conf" / "defaults.ini").is_file():
                return (binary, *subcommand, "--homepath", home)
    return None


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def active_units(units: Sequence[str], run: Runner = subprocess.run) -> list[str]:
    if not units or not systemd_running():
        return []
    return [
        unit
        for unit in units
        if run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0
    ]


def port_in_use_message(taken: Sequence[tuple[int, str]], active: Sequence[str]) -> str:
    """`taken`: (port, what needs it); `active`: Debian units running that listen on one of them."""
    ports = ", ".join(f"{port} ({what})" for port, what in taken)
    if active:
        return (
            f"port already in use: {ports}. The Debian packages' systemd unit(s) {', '.join(active)} "
            f"are active and listen there: `sudo systemctl disable --now {' '.join(active)}`, then retry."
        )
    return f"port already in use: {ports}. Stop whatever holds it (`make down`?) and retry."


def check_ports(stack: Sequence[Component]) -> None:
    taken = [
        (port, f"{c.name} {kind}") for c in stack for kind, port in c.ports.items() if not port_free(port)
    ]
    if taken:
        ports = {port for port, _ in taken}
        suspects = [unit for unit, port in DEBIAN_UNIT_PORTS.items() if port in ports]
        raise StackError(port_in_use_message(taken, active_units(suspects)))
