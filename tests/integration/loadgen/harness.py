"""Both services in-process (SQLite, bcrypt cost 4) as the real wiring builds them: fault injection
enabled, /admin/faults on each metrics port (127.0.0.1, port 0), plus a LoadgenConfig aimed at them."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grpcdemo.faults import FaultInjector
from grpcdemo.runtime.host import ServiceHost

from loadgen.arrivals import plan
from loadgen.config import LoadgenConfig
from loadgen.kinds import Action
from loadgen.scenarios import SCENARIOS
from tests.support.services import running_stack


@dataclass
class LoadgenStack:
    userd: ServiceHost
    orderd: ServiceHost

    @property
    def userd_faults(self) -> FaultInjector:
        return self.userd.faults

    @property
    def orderd_faults(self) -> FaultInjector:
        return self.orderd.faults

    @property
    def userd_admin(self) -> str:
        return f"http://127.0.0.1:{self.userd.metrics_port}"

    @property
    def orderd_admin(self) -> str:
        return f"http://127.0.0.1:{self.orderd.metrics_port}"

    def userd_value(self, name: str, **labels: str) -> float:
        return self.userd.registry.get_sample_value(name, labels) or 0.0

    def orderd_value(self, name: str, **labels: str) -> float:
        return self.orderd.registry.get_sample_value(name, labels) or 0.0

    def config(self, tmp_path: Path, **changes: Any) -> LoadgenConfig:
        base = LoadgenConfig(
            rps=40,
            duration=2,
            users=5,
            pool_file=tmp_path / "loadgen-users.json",
            seed=7,
            target_userd=f"127.0.0.1:{self.userd.port}",
            target_orderd=f"127.0.0.1:{self.orderd.port}",
            userd_admin=self.userd_admin,
            orderd_admin=self.orderd_admin,
            metrics_addr="",
            timeout=5,
            shutdown_grace=3,
            progress_interval=1,
        )
        return replace(base, **changes)


@asynccontextmanager
async def loadgen_stack(
    tmp_path: Path,
    *,
    userd_extra: Mapping[str, str] | None = None,
    admin_enabled: bool = True,
    admin_token: str | None = None,
) -> AsyncIterator[LoadgenStack]:
    faults = {"FAULT_INJECTION_ENABLED": "true" if admin_enabled else "false"}
    if admin_token is not None:
        faults["FAULT_INJECTION_TOKEN"] = admin_token
    async with running_stack(
        f"sqlite+aiosqlite:///{tmp_path / 'userd.sqlite3'}",
        f"sqlite+aiosqlite:///{tmp_path / 'orderd.sqlite3'}",
        userd_extra={**faults, **(userd_extra or {})},
        orderd_extra=faults,
    ) as stack:
        yield LoadgenStack(stack.userd, stack.orderd)


def planned_actions(config: LoadgenConfig) -> Counter[Action]:
    """What a run with `config` sends: the plan depends on the seed alone, so a test can know
    exactly how many of each action to expect from the services."""
    assert config.seed is not None and config.duration is not None
    scenario = SCENARIOS[config.scenario]
    arrivals = plan(scenario.mix, scenario.profile(config.rps, config.spike), config.seed, config.arrivals)
    duration = config.duration
    return Counter(a.action for a in itertools.takewhile(lambda a: a.offset < duration, arrivals))
