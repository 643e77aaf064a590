"""Just enough PromQL lexing to list the metric names an expression selects.

Not a parser: promtool proves the syntax (test_metric_names.py) and the live test proves the
semantics. This only has to find every `name` and `name{...}` selector, which it does by blanking
what cannot hold one (strings, label matchers, ranges, numbers, grouping clauses) and dropping
function names and keywords from the identifiers that are left."""

from __future__ import annotations

import re
from typing import Final

_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS: Final = re.compile(r"\{[^{}]*\}")
_RANGE: Final = re.compile(r"\[[^\]]*\]")
_GROUPING: Final = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_NUMBER: Final = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?:ms|s|m|h|d|w|y)?)")
_IDENTIFIER: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS: Final = frozenset(
    {
        "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
        "group_right", "inf", "nan", "start", "end", "atan2",
    }
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        if name.lower() in _KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or aggregation
        names.add(name)
    return names
