"""A container without Docker: a process in a private mount namespace (`unshare --mount`, as root)
that sees compose's bind mounts and named volumes at their container paths, its own /tmp where
compose gives it a tmpfs, a read-only root where compose says `read_only`, and compose's DNS through
its own /etc/resolv.conf. The network is the host's: each replica listens on its own loopback
address instead (see stack.py)."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Bind:
    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Filesystem:
    binds: tuple[Bind, ...]
    resolv_conf: Path
    tmpfs: tuple[str, ...] = ()
    read_only_root: bool = False
    working_dir: str | None = None
    user: str | None = None
    """uid:gid to run as after the mounts (the image's USER); None stays root."""
    keep: tuple[Path, ...] = ()
    """Host folders that must stay visible through a tmpfs mounted over one of their parents (the
    project and its venv, when they live under /tmp)."""
    stage: Path | None = None
    """An empty host folder outside every tmpfs target, where `keep` folders wait while the tmpfs is
    mounted (one numbered subfolder each)."""
    created: list[Path] = field(default_factory=list, compare=False)
    """Mount points this filesystem had to create on the host (removed by `remove_mount_points`)."""


def _inside(path: str, other: str) -> bool:
    return PurePosixPath(other) in PurePosixPath(path).parents


def prepare_mount_points(fs: Filesystem) -> None:
    """Mount points must exist before a bind: create the missing ones on the host (empty folders or
    files), except those under another bind's target, which the bound source provides."""
    targets = [bind.target for bind in fs.binds]
    for bind in fs.binds:
        if any(_inside(bind.target, other) for other in targets):
            continue
        target = Path(bind.target)
        missing = [p for p in (target, *target.parents) if not p.exists() and not p.is_symlink()]
        for path in reversed(missing):
            if path == target and not bind.source.is_dir():
                path.touch()
            else:
                path.mkdir()
            fs.created.append(path)


def remove_mount_points(fs: Filesystem) -> None:
    for path in reversed(fs.created):
        # Still a mount point of a running process, or not empty: leave it.
        with contextlib.suppress(OSError):
            path.rmdir() if path.is_dir() else path.unlink()


def _setpriv(user: str) -> list[str]:
    uid, _, gid = user.partition(":")
    return ["setpriv", f"--reuid={uid}", f"--regid={gid or uid}", "--clear-groups", "--"]


def script(fs: Filesystem) -> str:
    """The shell run inside the new namespace before `exec`ing the command (given as "$@")."""
    lines = ["set -e", f"mount --bind {shlex.quote(str(fs.resolv_conf))} /etc/resolv.conf"]
    # Parents before children, as Docker mounts them.
    for bind in sorted(fs.binds, key=lambda b: len(PurePosixPath(b.target).parts)):
        target = shlex.quote(bind.target)
        lines.append(f"mount --bind {shlex.quote(str(bind.source))} {target}")
        if bind.read_only:
            lines.append(f"mount -o remount,bind,ro {target}")
    for path in fs.tmpfs:
        # A folder the process needs that lives under this tmpfs (the project under /tmp): park it
        # outside with a bind, mount the tmpfs, then move it back to its own path on top.
        kept = [k for k in fs.keep if PurePosixPath(path) in PurePosixPath(k).parents]
        parked: list[tuple[Path, Path]] = []
        for k in kept:
            assert fs.stage is not None, "a kept folder needs a stage"
            spot = fs.stage / str(len(parked))
            lines.append(
                f"mkdir -p {shlex.quote(str(spot))} && mount --bind {shlex.quote(str(k))} {shlex.quote(str(spot))}"
            )
            parked.append((spot, k))
        lines.append(f"mount -t tmpfs -o mode=1777 tmpfs {shlex.quote(path)}")
        for spot, k in parked:
            lines.append(
                f"mkdir -p {shlex.quote(str(k))} && mount --move {shlex.quote(str(spot))} {shlex.quote(str(k))}"
            )
    if fs.read_only_root:
        lines.append("mount -o remount,bind,ro /")
    if fs.working_dir:
        lines.append(f"cd {shlex.quote(fs.working_dir)}")
    lines.append('exec "$@"')
    return "\n".join(lines)


def argv(fs: Filesystem, command: Sequence[str]) -> list[str]:
    """`command` run in its own mount namespace with `fs`; signals reach it directly (every step
    `exec`s), as they reach a container's process with `init: true`."""
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    prefix = _setpriv(fs.user) if fs.user else []
    return [unshare, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script(fs), "container",
            *prefix, *command]  # fmt: skip


def base_environment(path: str, extra: Mapping[str, str]) -> dict[str, str]:
    """What a container's process starts with: no host environment, only PATH, HOME and what the
    image and compose set."""
    # HOME is the container's writable tmpfs, as the image's user has no home folder.
    return {"PATH": path, "HOME": "/tmp", "LANG": "C.UTF-8", **extra, **_locale_passthrough()}  # noqa: S108


def _locale_passthrough() -> dict[str, str]:
    return {key: os.environ[key] for key in ("TZ",) if key in os.environ}
