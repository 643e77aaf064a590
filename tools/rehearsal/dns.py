"""Compose's name resolution, reproduced with dnsmasq (Debian `dnsmasq-base`).

Docker's embedded DNS answers a service name with the address of every running container of that
service and forwards any other name, which usually ends in NXDOMAIN. Here dnsmasq reads one hosts
file per service from a folder it watches (`--hostsdir`): writing the file changes the answer at
once, removing it makes the name NXDOMAIN, as a stopped service's name is in compose. Plain names
are never forwarded (`--domain-needed`) and nothing is upstream (`--no-resolv`, `--local=/#/`), so
a name of a component that is not rehearsed (Jaeger, Loki, Grafana) is NXDOMAIN as well."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path


class DnsError(RuntimeError):
    pass


class ComposeDns:
    def __init__(self, work: Path, address: str) -> None:
        self.address = address
        self._hosts = work / "dns-hosts"
        self._log = work / "logs" / "dnsmasq.log"
        self.resolv_conf = work / "resolv.conf"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        if not Path(binary).exists():
            raise DnsError("dnsmasq not found: apt-get install dnsmasq-base")
        self._hosts.mkdir(parents=True, exist_ok=True)
        self._log.parent.mkdir(parents=True, exist_ok=True)
        # One try and a short timeout, as Docker's resolver fails fast when a name is gone.
        self.resolv_conf.write_text(f"nameserver {self.address}\noptions timeout:1 attempts:1\n")
        argv = [
            binary,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--domain-needed",
            "--local=/#/",
            f"--listen-address={self.address}",
            "--bind-interfaces",
            "--port=53",
            f"--hostsdir={self._hosts}",
            # Root keeps read access to a work folder that only root may enter.
            "--user=root",
            "--pid-file=",
            "--log-facility=-",
        ]
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise DnsError(f"dnsmasq did not start on {self.address}:53 (see {self._log})")
            time.sleep(0.05)

    def _answers(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            # A standard query for "." type A: any answer at all means the server is up.
            query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01"
            try:
                sock.sendto(query, (self.address, 53))
                sock.recvfrom(512)
            except OSError:
                return False
            return True

    def set(self, name: str, addresses: Sequence[str]) -> None:
        """`name` answers with exactly `addresses` from now on; none makes it NXDOMAIN."""
        path = self._hosts / name
        if not addresses:
            path.unlink(missing_ok=True)
            return
        fd, tmp = tempfile.mkstemp(dir=self._hosts, prefix=f".{name}.")
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f"{address} {name}\n" for address in addresses)
        os.chmod(tmp, 0o644)
        # dnsmasq re-reads a file moved into the folder (inotify), never half of one.
        os.replace(tmp, path)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
