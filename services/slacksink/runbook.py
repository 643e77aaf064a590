"""docs/runbook.md as a web page, so every alert's runbook link resolves wherever the stack runs
(natively and in compose the sink is on 127.0.0.1:9095). A deliberately small Markdown subset:
headings get GitHub's anchors (`## ServiceDown` -> `#servicedown`), fenced code stays verbatim,
`code` spans and **bold** are kept, everything else is escaped text in paragraphs and lists."""

from __future__ import annotations

import re
from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
    "pre{background:#f4f4f4;padding:.6rem;overflow-x:auto}code{background:#f4f4f4}"
    "h2{border-top:1px solid #ddd;padding-top:1rem}"
)


def anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _inline(text: str) -> str:
    html = escape(text)
    html = re.sub(r"`([^`]+)`", r"<code>\1</code>", html)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", html)


def render_runbook(markdown: str) -> str:
    out: list[str] = []
    paragraph: list[str] = []
    in_code = False
    in_list = False

    def end_paragraph() -> None:
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    def flush() -> None:
        nonlocal in_list
        end_paragraph()
        if in_list:
            out.append("</ul>")
            in_list = False

    for line in markdown.splitlines():
        if line.startswith("```"):
            flush()
            out.append("</code></pre>" if in_code else "<pre><code>")
            in_code = not in_code
        elif in_code:
            out.append(escape(line))
        elif heading := re.match(r"(#{1,4}) (.+)", line):
            flush()
            level, text = len(heading[1]), heading[2]
            out.append(f'<h{level} id="{anchor(text)}">{_inline(text)}</h{level}>')
        elif item := re.match(r"\s*[-*] (.+)", line):
            end_paragraph()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_inline(item[1])}</li>")
        elif not line.strip():
            flush()
        elif in_list and line.startswith(" "):
            out[-1] = out[-1][: -len("</li>")] + " " + _inline(line.strip()) + "</li>"
        else:
            paragraph.append(line.strip())
    flush()
    body = "\n".join(out)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Runbook</title>'
        f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )
