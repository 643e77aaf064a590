"""Switches a scenario's faults on before the run and off after it, whatever ends the run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from loadgen.fault_admin import FaultAdminClient, FaultAdminError
from loadgen.scenarios import FaultPlan, Service


class FaultSwitch:
    def __init__(
        self, plans: tuple[FaultPlan, ...], clients: Mapping[Service, FaultAdminClient], out: TextIO
    ) -> None:
        self._plans = plans
        self._clients = clients
        self._out = out
        self.applied: list[Service] = []

    async def switch_on(self) -> None:
        """A service that refuses (fault injection disabled, wrong token, unreachable) is reported
        with what to do by hand instead; the run goes on."""
        for plan in self._plans:
            client = self._clients[plan.service]
            try:
                state = await client.put(plan.spec)
            except FaultAdminError as error:
                self._out.write(
                    f"loadgen: could not switch faults on in {plan.service}: {error}\n"
                    f"loadgen: to see this scenario anyway, {plan.manual}\n"
                )
                continue
            self.applied.append(plan.service)
            self._out.write(f"loadgen: faults on in {plan.service}: {state}\n")
            self._out.write(
                f"loadgen: if this process is killed, clear them with: curl -X DELETE {client.url}\n"
            )

    async def switch_off(self) -> None:
        for service in self.applied:
            client = self._clients[service]
            try:
                await client.clear()
            except FaultAdminError as error:
                self._out.write(
                    f"loadgen: could not switch faults off in {service}: {error}\n"
                    f"loadgen: clear them by hand: curl -X DELETE {client.url} "
                    "(add -H 'Authorization: Bearer ...' if a token is set), or restart the service\n"
                )
                continue
            self._out.write(f"loadgen: faults off in {service}\n")
        self.applied = []
