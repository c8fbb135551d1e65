"""Worktree creation time: a run's workspace made from base, for a small and a medium repo.

Run: `.venv/bin/python bench/workspace_cost.py [--runs N]`.
Prints a table (p50 and max over N creations); wall time on this machine, not assertions.
The medium repository is generated: 2,000 files in 100 folders, about 8 MB, 20 commits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from factory import worktrees
from factory.workspaces import GitWorkspace, branch_name

IDENTITY = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **IDENTITY}, check=True, capture_output=True
    )


def make_repo(root: Path, files: int, commits: int, size: int) -> Path:
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for c in range(commits):
        for i in range(c, files, commits):
            folder = root / f"pkg{i % 100:03d}"
            folder.mkdir(exist_ok=True)
            (folder / f"mod{i:05d}.py").write_text(f"# {c}\n" + "x = 1\n" * (size // 6))
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"commit {c}")
    return root


def measure(repo: Path, runs: int) -> list[float]:
    spec = GitWorkspace(repo=str(repo), base="main", cleanup="always")
    took = []
    for n in range(runs):
        branch = branch_name(f"bench card {n}", str(uuid.uuid4()))
        start = time.perf_counter()
        made = worktrees.ensure(spec, branch, None, repo)
        took.append(time.perf_counter() - start)
        worktrees.remove(made.path)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nfactory-bench-"))
    try:
        repos = {
            "small (10 files, 40 KB)": make_repo(tmp / "small", 10, 2, 4_000),
            "medium (2,000 files, 8 MB)": make_repo(tmp / "medium", 2_000, 20, 4_000),
        }
        print(f"worktree creation (git worktree add from base), {args.runs} runs each")
        print(f"{'repository':<28} {'p50 ms':>8} {'max ms':>8}")
        for name, repo in repos.items():
            took = measure(repo, args.runs)
            p50 = statistics.median(took) * 1000
            print(f"{name:<28} {p50:>8.0f} {max(took) * 1000:>8.0f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
