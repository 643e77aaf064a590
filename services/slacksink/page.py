"""The HTML view of received messages: newest first, firing red, resolved green, everything escaped."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import Any
from urllib.parse import urlsplit

from slacksink.store import Message

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; background: #f7f7f8; color: #1d1c1d; }
h1 { font-size: 1.3rem; }
.msg { background: #fff; border-left: 6px solid #999; margin: 0 0 1rem; padding: .6rem 1rem; }
.msg.firing { border-color: #d40e0d; }
.msg.resolved { border-color: #2eb67d; }
.meta { color: #616061; font-size: .85rem; }
.title { font-weight: 600; margin: .3rem 0; }
.text { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: .85rem; margin: .3rem 0; }
.actions a { margin-right: .8rem; font-size: .85rem; }
"""


def _text(value: object) -> str:
    return escape(value) if isinstance(value, str) else ""


def _link(url: object, label: str) -> str:
    # Payloads are untrusted: only http(s) links, so a "javascript:" URL never becomes clickable.
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return escape(label)
    return f'<a href="{escape(url, quote=True)}" rel="noreferrer">{escape(label)}</a>'


def _attachment(attachment: dict[str, Any]) -> str:
    title = _text(attachment.get("title"))
    title_link = attachment.get("title_link")
    if title and isinstance(title_link, str) and urlsplit(title_link).scheme in ("http", "https"):
        title = f'<a href="{escape(title_link, quote=True)}" rel="noreferrer">{title}</a>'
    actions = attachment.get("actions")
    links = [
        _link(action.get("url"), str(action.get("text", "link")))
        for action in (actions if isinstance(actions, list) else [])
        if isinstance(action, dict)
    ]
    html = f'<div class="title">{title}</div><div class="text">{_text(attachment.get("text"))}</div>'
    if links:
        html += f'<div class="actions">{"".join(links)}</div>'
    return html


def _message(message: Message) -> str:
    payload = message.payload
    attachments = payload.get("attachments")
    body = "".join(
        _attachment(attachment)
        for attachment in (attachments if isinstance(attachments, list) else [])
        if isinstance(attachment, dict)
    )
    if not body:
        body = f'<div class="text">{_text(payload.get("text"))}</div>'
    channel = payload.get("channel")
    meta = " · ".join(
        part
        for part in (
            escape(message.received_at.isoformat(timespec="seconds")),
            escape(message.hook),
            _text(channel),
            escape(message.status),
        )
        if part
    )
    return f'<div class="msg {escape(message.status)}"><div class="meta">{meta}</div>{body}</div>'


def render_page(messages: Iterable[Message]) -> str:
    items = "".join(_message(message) for message in messages) or "<p>No messages yet.</p>"
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="5">'
        "<title>Slack sink</title>"
        f"<style>{_STYLE}</style></head>"
        f"<body><h1>Slack sink: received notifications</h1>{items}</body></html>\n"
    )
