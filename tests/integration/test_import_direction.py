"""The import direction of .importlinter holds, and the contracts are not vacuous: a copy of the code
with one forbidden import (the liftable observability library reaching into the runtime) fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--config", str(root / ".importlinter")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root / 'services'}:{root}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_a_library_importing_the_runtime_breaks_them(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "services", tmp_path / "services", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "loadgen", tmp_path / "loadgen", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    exposition = tmp_path / "services" / "grpcdemo" / "observability" / "exposition.py"
    exposition.write_text(exposition.read_text() + "\nfrom grpcdemo.runtime import config  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "grpcdemo.observability.exposition -> grpcdemo.runtime.config" in result.stdout
