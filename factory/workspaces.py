"""A git worktree per run: the declaration and the pure decisions about it.

    from factory import GitWorkspace
    define_factory(..., workspace=GitWorkspace(repo=".", base="HEAD", cleanup="on_done"))

Each run of such a factory works in its own worktree on its own branch,
`nfactory/<card-slug>-<short run id>`, so two cards never edit one checkout.
Nothing here touches git or the disk: `factory/worktrees.py` is the shell that
does, and the engine sequences the two.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from factory.statuses import RunStatus

Cleanup = Literal["on_done", "always", "never"]
CLEANUPS: tuple[str, ...] = ("on_done", "always", "never")

# What the run row records about its worktree (runs.workspace_state):
#   pending  - named (branch chosen) in the run's first transaction, not yet on disk
#   ready    - on disk; agents work in it
#   removed  - removed at the run's end (its branch is kept: the commits are the work)
#   kept     - left on disk at the run's end, by policy or because it held changes
WorkspaceState = Literal["pending", "ready", "removed", "kept"]

SLUG_MAX = 40
SHORT_ID = 8
BRANCH_PREFIX = "nfactory/"

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[\w.-]+@[\w.-]+:")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class GitWorkspace:
    """Where a factory's runs get their worktrees.

    `repo`: a local path (relative paths are read from the directory the worker
    starts in) or a git URL (cloned once as a mirror under `.nfactory/repos/`);
    `base`: the ref each new run's branch starts from; `cleanup`: `on_done`
    removes the worktree when the run ends Done (kept for inspection otherwise),
    `always` at any end, `never` keeps it. A worktree holding uncommitted
    changes is never removed, whatever the policy.
    """

    repo: str | Path = "."
    base: str = "HEAD"
    cleanup: Cleanup = "on_done"

    def __post_init__(self) -> None:
        repo = os.fspath(self.repo) if isinstance(self.repo, os.PathLike) else self.repo
        if not isinstance(repo, str) or not repo.strip():
            raise ValueError(f"GitWorkspace.repo must be a path or a git URL, not {repo!r}")
        if not isinstance(self.base, str) or not self.base.strip():
            raise ValueError(f"GitWorkspace.base must be a git ref, not {self.base!r}")
        if self.base.startswith("-"):
            raise ValueError(f"GitWorkspace.base {self.base!r} must not start with '-'")
        if self.cleanup not in CLEANUPS:
            raise ValueError(
                f"GitWorkspace.cleanup must be one of {', '.join(CLEANUPS)}, not {self.cleanup!r}"
            )
        if not is_url(repo):
            # fixed at load, so a later chdir (or a takeover) cannot move the repository
            repo = os.path.abspath(os.path.expanduser(repo))
        object.__setattr__(self, "repo", repo)

    @property
    def is_url(self) -> bool:
        return is_url(str(self.repo))

    @property
    def location(self) -> str:
        """The repository: an absolute path, or the URL as given."""
        return str(self.repo)


def is_url(repo: str) -> bool:
    """`https://…`, `ssh://…`, `file://…` or scp-like `git@host:path`; anything else is a path."""
    return bool(_URL.match(repo))


def slug(title: str, max_len: int = SLUG_MAX) -> str:
    """A card title as a branch-safe word: lowercase ASCII letters, digits and single dashes."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    words = _NOT_SLUG.sub("-", folded.lower()).strip("-")
    return words[:max_len].rstrip("-") or "card"


def short_id(run_id: str) -> str:
    return run_id.replace("-", "")[:SHORT_ID]


def branch_name(title: str, run_id: str) -> str:
    """`nfactory/<card-slug>-<short run id>`: one per run, so a re-queued card gets a new one."""
    return f"{BRANCH_PREFIX}{slug(title)}-{short_id(run_id)}"


def dir_name(branch: str) -> str:
    """The worktree's folder under `.nfactory/workspaces/`: the branch without its prefix."""
    return branch.removeprefix(BRANCH_PREFIX).replace("/", "-")


def mirror_name(url: str) -> str:
    """The cached mirror's folder for `url`: readable, and distinct for distinct URLs."""
    tail = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    return f"{slug(tail, 30)}-{digest}.git"


PathState = Literal["worktree", "absent", "other"]
EnsurePlan = Literal["reuse", "create", "reattach", "lost", "occupied"]


def plan_ensure(recorded: str | None, path: PathState, branch_exists: bool) -> EnsurePlan:
    """What to do before an agent runs, from what the run row says and what is on disk.

    A restart or a takeover finds the worktree where the run row says and reuses
    it. If the folder vanished, the branch (the work committed so far) brings it
    back; a run whose branch is gone too has lost its work, and says so rather
    than start again from base behind the person's back.
    """
    if path == "worktree":
        return "reuse"
    if path == "other":
        return "occupied"
    if branch_exists:
        return "reattach"
    if recorded in (None, "pending"):
        return "create"
    return "lost"


CleanupAction = Literal["remove", "keep", "keep_dirty"]


def cleanup_action(policy: str, run_status: RunStatus, dirty: bool) -> CleanupAction:
    """At the run's end: remove the worktree, keep it by policy, or keep it for its changes."""
    wanted = policy == "always" or (policy == "on_done" and run_status == RunStatus.done)
    if not wanted:
        return "keep"
    return "keep_dirty" if dirty else "remove"


# git's messages (LC_ALL=C) when another git process holds a lock it needs: worth a retry.
_LOCK_MARKERS = (
    "index.lock",
    ".lock': file exists",
    "could not lock",
    "cannot lock ref",
    "unable to create",
    "another git process seems to be running",
    "is locked",
    "unable to lock",
)


def is_lock_error(stderr: str) -> bool:
    """git failed because another git process held a lock (a retry may pass)."""
    text = stderr.lower()
    return any(marker in text for marker in _LOCK_MARKERS)


def lock_backoff(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    """Seconds to wait before retry `attempt` (0-based) after a lock error."""
    return min(cap, base * (2 ** min(attempt, 16)))


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def workspaces_dir(root: Path) -> Path:
    return root / ".nfactory" / "workspaces"
