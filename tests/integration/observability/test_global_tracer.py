"""Installing the process-wide tracer provider, in a fresh interpreter: it can be set once per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_global_install_is_idempotent_and_silent() -> None:
    # The global provider can be set once per process, so this runs in a fresh interpreter.
    script = textwrap.dedent(
        """
        import logging
        logging.basicConfig(level=logging.WARNING)
        from opentelemetry import trace
        from grpcdemo.observability.tracing import create_tracer_provider, install_global_tracer_provider
        first = create_tracer_provider("a", environ={})
        second = create_tracer_provider("b", environ={})
        print(install_global_tracer_provider(first), install_global_tracer_provider(second))
        print(trace.get_tracer_provider() is first)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.split() == ["True", "False", "True"]
    assert "Overriding" not in result.stderr
