"""Write grafana/dashboards/*.json (run by `make dashboards`); `--check` exits 1 when a committed file
differs from what this script would write, without writing.

Generated rather than hand-edited so that panel ids, grid positions, datasource references and
links stay consistent across the five dashboards; tests/dashboards/ checks the files themselves.
What the dashboards show: tools/dashboards/content.py; how the JSON is built: tools/dashboards/builder.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboards.builder import Json
from dashboards.content import DASHBOARDS
from dashboards.thresholds import SLO_PERIOD

ROOT: Final = Path(__file__).resolve().parent.parent
OUT: Final = ROOT / "grafana" / "dashboards"

__all__ = ["DASHBOARDS", "SLO_PERIOD", "main", "render", "rendered"]


def render(build: Callable[[], Json]) -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """File name -> the text this script writes."""
    return {f"{uid}.json": render(build) for uid, build in DASHBOARDS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs; write nothing")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default: grafana/dashboards)")
    args = parser.parse_args(argv)
    stale = []
    for name, text in rendered().items():
        path: Path = args.out / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run `make dashboards`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
