"""Generate Python stubs for protos/ into services/grpcdemo/genproto/ (run by `make proto`).

protoc writes imports relative to the proto root (`from user.v1 import user_pb2`); the stubs live in
the `grpcdemo.genproto` package instead, so those imports are rewritten. Descriptor file names stay
`user/v1/user.proto`, which is what reflection clients and the .proto files agree on.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT = ROOT / "services" / "grpcdemo" / "genproto"


def proto_files() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(out: Path = OUT) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    include = Path(protoc.__file__).parent / "_proto"
    files = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    packages = {p.parts[0] for p in (Path(f) for f in files)}
    pattern = re.compile(rf"^(from|import) ({'|'.join(sorted(packages))})(\.| )", re.M)
    for path in out.rglob("*.py*"):
        text = pattern.sub(r"\1 grpcdemo.genproto.\2\3", path.read_text())
        path.write_text(text)
    for directory in [out, *(d for d in out.rglob("*") if d.is_dir())]:
        (directory / "__init__.py").write_text("")
    (out / "py.typed").write_text("")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
