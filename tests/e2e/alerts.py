"""Reading what reached the Slack sink and what Alertmanager holds, for the end-to-end tests."""

from __future__ import annotations

from typing import Any

from tests.support.live_stack import LiveStack, http_json

ALERT_TIMEOUT = 150.0


def titles(stack: LiveStack, status: str | None = None) -> list[str]:
    found = []
    for message in stack.slack_messages():
        if status is None or message["status"] == status:
            found += [a.get("title", "") for a in message["payload"].get("attachments", [])]
    return found


def arrived(stack: LiveStack, needle: str, status: str = "firing") -> bool:
    return any(needle in title for title in titles(stack, status))


def alertmanager_alerts(stack: LiveStack) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = http_json(f"{stack.alertmanager_url}/api/v2/alerts")
    return alerts
