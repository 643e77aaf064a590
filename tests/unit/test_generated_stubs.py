"""The committed stubs in services/grpcdemo/genproto must be exactly what `make proto` generates."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "tools" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_proto"] = module
    spec.loader.exec_module(module)
    return module


def files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_committed_stubs_match_protos(tmp_path: Path) -> None:
    _generator().generate(tmp_path / "genproto")
    fresh = files(tmp_path / "genproto")
    committed = files(ROOT / "services" / "grpcdemo" / "genproto")
    assert sorted(fresh) == sorted(committed), "run `make proto`: generated file set differs"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"run `make proto`: stale generated files {stale}"
