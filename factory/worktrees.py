"""The git shell under workspaces: worktrees made, reused, checked and removed.

Every call is `git` with an argv list (never a shell: branch names come from
card titles), a timeout, and English messages so a lock held by another git
process can be told apart and retried. All of it blocks: the engine calls it
through `run_io`, off the event loop. The decisions live in `workspaces.py`.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from factory.files import ensure_private_dir
from factory.workspaces import (
    GitWorkspace,
    PathState,
    dir_name,
    is_lock_error,
    lock_backoff,
    mirror_name,
    plan_ensure,
    workspaces_dir,
)

log = logging.getLogger("nfactory.workspaces")

GIT_TIMEOUT = 120.0  # a clone or fetch of a large repository may take a while
LOCK_RETRIES = 10  # about 10 s of backoff in all: git's own lock holders are quick
# Inherited from a git hook or a wrapper, these would point every call at another repository.
_GIT_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX")


class WorkspaceError(Exception):
    """A workspace cannot be made or used; the message says why and what to do."""


@dataclass(frozen=True)
class Prepared:
    path: Path
    branch: str
    how: Literal["created", "reattached", "reused"]
    base: str = ""  # the commit a created worktree started from


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
    env.update(LC_ALL="C", LANGUAGE="C", GIT_TERMINAL_PROMPT="0")
    return env


def git(
    args: Sequence[str], cwd: Path, *, check: bool = True, timeout: float = GIT_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """`git ARGS` in `cwd`; retried while another git process holds a lock it needs."""
    for attempt in range(LOCK_RETRIES + 1):
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            if not cwd.is_dir():
                raise WorkspaceError(f"{cwd} does not exist") from exc
            raise WorkspaceError("git is not installed (no `git` on PATH)") from exc
        except subprocess.TimeoutExpired:
            raise WorkspaceError(f"git {args[0]} in {cwd} took over {timeout:g} s") from None
        if done.returncode == 0 or not check:
            return done
        if is_lock_error(done.stderr) and attempt < LOCK_RETRIES:
            time.sleep(lock_backoff(attempt))
            continue
        break
    raise WorkspaceError(f"git {args[0]} failed in {cwd}: {_last_line(done.stderr)}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (fatal or lines or ["no message"])[-1]


def source(spec: GitWorkspace, home: Path) -> tuple[Path, Path]:
    """(where to run git, where the worktrees go) for `spec`; no network, no writes.

    A local repository keeps its worktrees under its own top folder; a URL's
    cached mirror lives under the worker's folder `home`, with its worktrees.
    """
    if spec.is_url:
        return home / ".nfactory" / "repos" / mirror_name(spec.location), workspaces_dir(home)
    repo = Path(spec.location)
    if not repo.exists():
        raise WorkspaceError(f"workspace repo {repo} does not exist")
    if not repo.is_dir():
        raise WorkspaceError(f"workspace repo {repo} is not a folder")
    found = git(["rev-parse", "--show-toplevel"], repo, check=False)
    if found.returncode != 0 or not found.stdout.strip():
        raise WorkspaceError(
            f"workspace repo {repo} is not a git repository (run `git init` there, or fix repo=)"
        )
    top = Path(found.stdout.strip())
    return top, workspaces_dir(top)


def ensure_mirror(spec: GitWorkspace, home: Path, *, refresh: bool) -> Path:
    """The URL's cached bare clone, made on first use; `refresh` fetches (offline: the cached
    copy serves)."""
    mirror, _ = source(spec, home)
    if not (mirror / "HEAD").exists():
        ensure_private_dir(mirror.parent)
        _ignore_everything(home / ".nfactory")
        staging = mirror.with_name(f".{mirror.name}.{os.getpid()}.tmp")
        git(["clone", "--bare", "--quiet", "--", spec.location, str(staging)], mirror.parent)
        # Upstream branches as origin/*, never as local branches: a mirror's pruning fetch
        # would delete the runs' own nfactory/* branches, and with them their work.
        git(["config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"], staging)
        git(["fetch", "--quiet", "--tags", "origin"], staging)
        git(["remote", "set-head", "origin", "--auto"], staging, check=False)
        try:
            staging.rename(mirror)  # another worker may have cloned it meanwhile: theirs wins
        except OSError:
            git(["worktree", "prune"], mirror.parent, check=False)
            _remove_tree(staging)
    elif refresh:
        fetched = git(["fetch", "--prune", "--quiet", "--tags", "origin"], mirror, check=False)
        if fetched.returncode != 0:
            log.warning(
                "workspace: fetching %s failed (%s); new worktrees start from the cached copy",
                spec.location,
                _last_line(fetched.stderr),
            )
    return mirror


def resolve_base(repo: Path, base: str, *, upstream: bool = False) -> str:
    """The commit `base` names in `repo` (in a URL's cache, `upstream`, the remote's branch
    first), or a WorkspaceError saying what is missing."""
    for ref in (f"origin/{base}", base) if upstream else (base,):
        found = git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
            repo,
            check=False,
        )
        if found.returncode == 0 and found.stdout.strip():
            return found.stdout.strip()
    refs = git(["for-each-ref", "--count=1", "--format=%(refname)"], repo, check=False)
    if not refs.stdout.strip():
        raise WorkspaceError(
            f"workspace repo {repo} has no commits yet (make a first commit, then re-queue)"
        )
    raise WorkspaceError(f"workspace base {base!r} is not a commit in {repo} (fix base=)")


def check(spec: GitWorkspace, home: Path) -> str:
    """What `doctor` reports: the repository and base commit, or a WorkspaceError."""
    if spec.is_url:
        found = git(["ls-remote", "--quiet", "--", spec.location, spec.base], home, check=False)
        if found.returncode != 0:
            raise WorkspaceError(
                f"workspace repo {spec.location} cannot be read: {_last_line(found.stderr)}"
            )
        mirror, _ = source(spec, home)
        if (mirror / "HEAD").exists():
            sha = resolve_base(mirror, spec.base, upstream=True)
            return f"{spec.location} at {spec.base} ({sha[:10]}), mirror {mirror}"
        return f"{spec.location} is reachable (cloned on first use into {mirror})"
    repo, root = source(spec, home)
    sha = resolve_base(repo, spec.base)
    return f"{repo} at {spec.base} ({sha[:10]}), worktrees in {root}"


def path_state(path: Path) -> PathState:
    if (path / ".git").is_file():  # a linked worktree's .git is a file naming its admin folder
        return "worktree"
    return "other" if path.exists() or path.is_symlink() else "absent"


def branch_exists(repo: Path, branch: str) -> bool:
    found = git(["show-ref", "--verify", "--quiet", f"refs/heads/{branch}"], repo, check=False)
    return found.returncode == 0


def ensure(spec: GitWorkspace, branch: str, recorded: str | None, home: Path) -> Prepared:
    """The run's worktree on `branch`, made or brought back as `plan_ensure` says."""
    try:
        return _ensure(spec, branch, recorded, home)
    except OSError as exc:  # disk full, permissions, a file where a folder should be
        where = f" ({exc.filename})" if exc.filename else ""
        raise WorkspaceError(f"cannot make the workspace: {exc.strerror or exc}{where}") from exc


def _ensure(spec: GitWorkspace, branch: str, recorded: str | None, home: Path) -> Prepared:
    repo, root = source(spec, home)
    path = root / dir_name(branch)
    state = path_state(path)
    if state == "worktree":
        return Prepared(path, branch, "reused")
    if spec.is_url:
        ensure_mirror(spec, home, refresh=recorded in (None, "pending"))
    exists = branch_exists(repo, branch)
    match plan_ensure(recorded, state, exists):
        case "occupied":
            raise WorkspaceError(
                f"{path} exists but is not a git worktree (move it away, then re-queue the card)"
            )
        case "lost":
            raise WorkspaceError(
                f"the run's worktree {path} and its branch {branch} are gone "
                f"(re-queue the card to start again from {spec.base})"
            )
        case "reattach":
            _prepare_root(root)
            git(["worktree", "prune"], repo)  # forget the folder that vanished
            git(["worktree", "add", "--quiet", str(path), branch], repo)
            return Prepared(path, branch, "reattached")
        case "create":
            sha = resolve_base(repo, spec.base, upstream=spec.is_url)
            _prepare_root(root)
            git(["worktree", "add", "--quiet", "-b", branch, str(path), sha], repo)
            return Prepared(path, branch, "created", sha)
    return Prepared(path, branch, "reused")


def _prepare_root(root: Path) -> None:
    """`.nfactory/workspaces/`, owner-only, and invisible to the repository's `git status`."""
    ensure_private_dir(root)
    _ignore_everything(root.parent)


def _ignore_everything(folder: Path) -> None:
    ensure_private_dir(folder)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# made by nfactory: its worktrees and caches are not the project's\n*\n")


def is_dirty(path: Path) -> bool:
    """Uncommitted changes in the worktree, new files included (ignored ones are not)."""
    if path_state(path) != "worktree":
        return False
    found = git(["status", "--porcelain", "--untracked-files=normal"], path)
    return bool(found.stdout.strip())


def remove(path: Path, *, force: bool = False) -> None:
    """Remove the worktree at `path` (git refuses if it holds changes, unless `force`); its
    branch stays: the commits on it are the run's work."""
    if path_state(path) != "worktree":
        return
    git(["worktree", "remove", *(["--force"] if force else []), str(path)], path)


def size(path: Path) -> int:
    """Bytes the worktree's files take (not following links)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue  # removed while we looked
    return total


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
