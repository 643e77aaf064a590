"""Suite-wide rules. Tests that need an external server (PostgreSQL, Prometheus, Alertmanager) skip
with a reason when it is missing, so `make test` passes on a laptop; CI sets
REQUIRE_EXTERNAL_SERVICES=1, which turns any skip into a failed run."""

from __future__ import annotations

import os

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("REQUIRE_EXTERNAL_SERVICES") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        if reporter is not None:
            reporter.write_line(
                f"REQUIRE_EXTERNAL_SERVICES is set and {len(skipped)} test(s) were skipped: failing the run",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
