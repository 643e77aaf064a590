"""Switches a scenario's faults on before the run and off after it, whatever ends the run, on every
replica of the service.

An admin URL names a service (`http://userd:9091` in compose), and DNS answers such a name with
every replica's address, one per request if asked naively: a drill would reach one replica of three,
and its "off" could reach another than its "on". So the name is resolved to all its addresses and
each replica is switched on and checked by itself; while the drill runs, the name is resolved again
every few seconds and a replica that joined gets the faults too, named in the output; at the end
every replica that had them, and every one the name resolves to then, is switched off."""

from __future__ import annotations

import asyncio
import socket
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TextIO

from loadgen.fault_admin import FaultAdminClient, FaultAdminError
from loadgen.scenarios import FaultPlan, Service

RECHECK_SECONDS = 5.0


def replica_urls(base_url: str) -> list[str]:
    """`base_url` once per address its host resolves to (IPv4 when it has any), in resolver order;
    empty when the name does not resolve."""
    parsed = urllib.parse.urlsplit(base_url)
    host = parsed.hostname or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    v4 = [info[4][0] for info in infos if info[0] == socket.AF_INET]
    addresses = list(dict.fromkeys(v4 or [str(info[4][0]) for info in infos]))
    return [f"{parsed.scheme}://{f'[{a}]' if ':' in a else a}:{port}" for a in addresses]


def _where(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


class FaultSwitch:
    def __init__(
        self,
        plans: tuple[FaultPlan, ...],
        admin_urls: Mapping[Service, str],
        token: str | None,
        out: TextIO,
        *,
        resolve: Callable[[str], list[str]] = replica_urls,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        self._plans = plans
        self._admin_urls = admin_urls
        self._token = token
        self._out = out
        self._resolve = resolve
        self._recheck = recheck_seconds
        self.applied: dict[str, FaultPlan] = {}
        """Replica admin URL -> the plan switched on there."""

    async def _replicas(self, plan: FaultPlan) -> list[str]:
        return await asyncio.to_thread(self._resolve, self._admin_urls[plan.service])

    async def _apply(self, plan: FaultPlan, url: str) -> bool:
        client = FaultAdminClient(url, self._token)
        try:
            state = await client.put(plan.spec)
            confirmed = await client.get()
        except FaultAdminError as error:
            self._out.write(
                f"loadgen: could not switch faults on in {plan.service} at {_where(url)}: {error}\n"
            )
            return False
        if confirmed != state:
            self._out.write(f"loadgen: {plan.service} at {_where(url)} reports {confirmed}, not {state}\n")
        self.applied[url] = plan
        self._out.write(f"loadgen: faults on in {plan.service} at {_where(url)}: {confirmed}\n")
        return True

    async def switch_on(self) -> None:
        """A service that refuses (fault injection disabled, wrong token, unreachable) is reported
        with what to do by hand instead; the run goes on."""
        for plan in self._plans:
            urls = await self._replicas(plan)
            results = [await self._apply(plan, url) for url in urls]
            if not any(results):
                self._out.write(
                    f"loadgen: no replica of {plan.service} took the faults "
                    f"({self._admin_urls[plan.service]} resolves to {len(urls)} address(es))\n"
                    f"loadgen: to see this scenario anyway, {plan.manual}\n"
                )
                continue
            self._out.write(
                f"loadgen: faults on in {sum(results)} of {len(urls)} {plan.service} replica(s); "
                f"if this process is killed, clear each with: curl -X DELETE <replica>/admin/faults\n"
            )

    async def follow(self) -> None:
        """While the drill runs: a replica that joins a drilled service gets its faults too. Runs until
        cancelled."""
        while True:
            await asyncio.sleep(self._recheck)
            for plan in {id(p): p for p in self.applied.values()}.values():
                for url in await self._replicas(plan):
                    if url not in self.applied:
                        self._out.write(
                            f"loadgen: {plan.service} replica {_where(url)} joined during the drill\n"
                        )
                        await self._apply(plan, url)

    async def switch_off(self) -> None:
        targets = dict(self.applied)
        for plan in {id(p): p for p in self.applied.values()}.values():
            for url in await self._replicas(plan):
                if url not in targets:
                    self._out.write(
                        f"loadgen: {plan.service} replica {_where(url)} joined during the drill\n"
                    )
                    targets[url] = plan
        for url, plan in targets.items():
            try:
                await FaultAdminClient(url, self._token).clear()
            except FaultAdminError as error:
                if url not in self.applied:
                    continue  # joined at the very end and never had the faults
                self._out.write(
                    f"loadgen: could not switch faults off in {plan.service} at {_where(url)}: {error}\n"
                    f"loadgen: clear them by hand: curl -X DELETE {url}/admin/faults "
                    "(add -H 'Authorization: Bearer ...' if a token is set), or restart that replica\n"
                )
                continue
            self._out.write(f"loadgen: faults off in {plan.service} at {_where(url)}\n")
        self.applied = {}
