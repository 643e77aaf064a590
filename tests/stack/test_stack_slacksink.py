"""The Slack sink: accepts Alertmanager-shaped Slack payloads on /hooks/*, serves them back as JSON
and HTML (escaped, newest first), stays bounded, rejects what is not a JSON object."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from slacksink.server import SinkServer
from slacksink.store import MessageStore, classify

from tests.stack.support import ROOT, get_json, http_get, http_post, running_sink


def slack_payload(title: str, color: str = "danger", text: str = "details") -> dict[str, Any]:
    """What Alertmanager 0.25's Slack integration POSTs (attachments, no blocks)."""
    return {
        "channel": "#alerts-critical",
        "username": "alertmanager",
        "attachments": [
            {
                "title": title,
                "title_link": "http://localhost:3000/d/grpc-overview",
                "text": text,
                "fallback": title,
                "color": color,
                "mrkdwn_in": ["title", "text", "fallback"],
                "actions": [
                    {
                        "type": "button",
                        "text": "Runbook",
                        "url": "https://example.org/runbook.md#servicedown",
                    },
                    {"type": "button", "text": "Sneaky", "url": "javascript:alert(1)"},
                ],
            }
        ],
    }


def post(sink: SinkServer, path: str, payload: object) -> tuple[int, str]:
    return http_post(sink.url + path, json.dumps(payload).encode())


def test_message_round_trips_through_api(sink: SinkServer) -> None:
    payload = slack_payload("[FIRING:1] ServiceDown on userd")
    assert post(sink, "/hooks/critical", payload) == (200, "ok")

    document = get_json(sink.url + "/api/messages")

    assert document["count"] == 1
    [message] = document["messages"]
    assert message["hook"] == "/hooks/critical"
    assert message["status"] == "firing"
    assert message["payload"] == payload
    assert message["received_at"].endswith("+00:00")


def test_newest_first_and_resolved_status(sink: SinkServer) -> None:
    post(sink, "/hooks/critical", slack_payload("[FIRING:1] ServiceDown on userd"))
    post(sink, "/hooks/critical", slack_payload("[RESOLVED] ServiceDown on userd", color="good"))

    messages = get_json(sink.url + "/api/messages")["messages"]

    assert [m["status"] for m in messages] == ["resolved", "firing"]


def test_html_page_shows_messages_escaped_and_colored(sink: SinkServer) -> None:
    post(sink, "/hooks/warning", slack_payload("[FIRING:1] <script>x</script>", text="a & b"))
    post(sink, "/hooks/critical", slack_payload("[RESOLVED] ServiceDown on userd", color="good"))

    status, page = http_get(sink.url + "/")

    assert status == 200
    assert "<script>x</script>" not in page
    assert "[FIRING:1] &lt;script&gt;x&lt;/script&gt;" in page
    assert "a &amp; b" in page
    assert page.index("[RESOLVED] ServiceDown on userd") < page.index("[FIRING:1] &lt;script&gt;")
    assert '<div class="msg resolved">' in page
    assert '<div class="msg firing">' in page
    assert 'href="https://example.org/runbook.md#servicedown"' in page
    assert "javascript:" not in page
    assert "/hooks/warning" in page


def test_store_is_bounded() -> None:
    with MessageStore(max_messages=3) as store:
        for index in range(5):
            store.add("/hooks/critical", {"text": f"message {index}"})
        assert [m.payload["text"] for m in store.newest_first()] == ["message 4", "message 3", "message 2"]


def test_bounded_over_http() -> None:
    with MessageStore(max_messages=2) as store, running_sink(store) as server:
        for index in range(4):
            assert post(server, "/hooks/info", {"text": f"m{index}"})[0] == 200
        messages = get_json(server.url + "/api/messages")["messages"]
    assert [m["payload"]["text"] for m in messages] == ["m3", "m2"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "body is not JSON"),
        (b"\xff\xfe", "body is not JSON"),
        (b"[1, 2]", "body is not a JSON object"),
        (b'"text"', "body is not a JSON object"),
    ],
)
def test_rejects_what_is_not_a_json_object(sink: SinkServer, body: bytes, expected: str) -> None:
    assert http_post(sink.url + "/hooks/critical", body) == (400, expected + "\n")
    assert get_json(sink.url + "/api/messages")["count"] == 0


def test_only_hooks_accept_posts_and_unknown_paths_are_404(sink: SinkServer) -> None:
    assert post(sink, "/api/messages", {"text": "x"})[0] == 404
    assert post(sink, "/hooks/", {"text": "x"})[0] == 404
    assert http_get(sink.url + "/nope")[0] == 404
    assert get_json(sink.url + "/api/messages")["count"] == 0


def test_healthz(sink: SinkServer) -> None:
    assert http_get(sink.url + "/healthz") == (200, "ok\n")


def test_jsonl_mirror(tmp_path: Path) -> None:
    path = tmp_path / "messages.jsonl"
    with MessageStore(max_messages=1, jsonl_path=path) as store:
        store.add("/hooks/critical", {"text": "one"})
        store.add("/hooks/warning", {"text": "two"})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    # The file keeps everything; only memory is bounded.
    assert [(line["hook"], line["payload"]["text"]) for line in lines] == [
        ("/hooks/critical", "one"),
        ("/hooks/warning", "two"),
    ]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"attachments": [{"title": "[FIRING:2] X", "color": "danger"}]}, "firing"),
        ({"attachments": [{"title": "[FIRING:1] X", "color": "warning"}]}, "firing"),
        ({"attachments": [{"title": "[RESOLVED] X", "color": "good"}]}, "resolved"),
        ({"attachments": [{"title": "[RESOLVED] X", "color": "#123456"}]}, "resolved"),
        ({"status": "resolved", "alerts": []}, "resolved"),
        ({"text": "plain"}, "unknown"),
    ],
)
def test_classify(payload: dict[str, Any], status: str) -> None:
    assert classify(payload) == status


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    env = {
        **os.environ,
        # Until the editable install is refreshed to include slacksink (harmless afterwards).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "services"), os.environ.get("PYTHONPATH")])),
    }
    jsonl = tmp_path / "sink.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "slacksink", "--addr", "127.0.0.1:0", "--jsonl", str(jsonl)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        first_line = process.stderr.readline()
        assert "listening on http://127.0.0.1:" in first_line, first_line
        url = first_line.rsplit(" ", 1)[1].strip()
        assert http_get(url + "/healthz") == (200, "ok\n")
        assert http_post(url + "/hooks/critical", b'{"text": "hello"}')[0] == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
    assert json.loads(jsonl.read_text())["payload"] == {"text": "hello"}


def test_the_runbook_is_served_with_an_anchor_for_every_alert() -> None:
    """The alerts' runbook links (http://127.0.0.1:9095/runbook#<alert>) resolve: the sink serves
    docs/runbook.md as HTML with one anchor per alert of alerts.yml."""
    import yaml

    alerts = [
        rule["alert"]
        for group in yaml.safe_load((ROOT / "prometheus" / "rules" / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    with MessageStore(10) as store, running_sink(store, ROOT / "docs" / "runbook.md") as server:
        status, page = http_get(f"{server.url}/runbook")
    assert status == 200
    for alert in alerts:
        assert f'id="{alert.lower()}"' in page, alert
    assert "<pre><code>" in page  # the PromQL blocks stay verbatim
    with MessageStore(10) as store, running_sink(store) as server:
        status, _ = http_get(f"{server.url}/runbook")
    assert status == 404
