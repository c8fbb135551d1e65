"""The pure decisions about workspaces: names, what to do on a restart, what to clean up."""

from __future__ import annotations

import re
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory import GitWorkspace
from factory.workspaces import (
    branch_name,
    cleanup_action,
    dir_name,
    is_lock_error,
    is_url,
    lock_backoff,
    mirror_name,
    plan_ensure,
    slug,
)

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
run_ids = st.uuids().map(str)


@given(st.text())
def test_a_slug_is_branch_safe_and_short(title: str) -> None:
    made = slug(title)
    assert SLUG.match(made), made
    assert len(made) <= 40


def test_a_slug_reads_like_the_title() -> None:
    assert slug("Fix the Login page!") == "fix-the-login-page"
    assert slug("Café déjà vu") == "cafe-deja-vu"
    assert slug("../../etc/passwd; rm -rf ~") == "etc-passwd-rm-rf"
    assert slug("🙂🙂") == "card"


@settings(max_examples=40, deadline=None)
@given(st.text(), run_ids)
def test_branch_names_are_valid_git_branches(title: str, run_id: str) -> None:
    branch = branch_name(title, run_id)
    assert branch.startswith("nfactory/")
    assert branch.endswith("-" + run_id.replace("-", "")[:8])
    checked = subprocess.run(
        ["git", "check-ref-format", "--branch", branch], capture_output=True, text=True
    )
    assert checked.returncode == 0, (branch, checked.stderr)
    assert "/" not in dir_name(branch)


@given(st.text(), run_ids, run_ids)
def test_two_runs_of_one_card_never_share_a_branch(title: str, a: str, b: str) -> None:
    if a.replace("-", "")[:8] != b.replace("-", "")[:8]:
        assert branch_name(title, a) != branch_name(title, b)


@given(
    st.sampled_from(["on_done", "always", "never"]),
    st.sampled_from(["done", "failed", "blocked", "cancelled"]),
    st.booleans(),
)
def test_cleanup_never_removes_uncommitted_work(policy: str, status: str, dirty: bool) -> None:
    action = cleanup_action(policy, status, dirty)
    if dirty:
        assert action != "remove"
    if policy == "never":
        assert action == "keep"
    if policy == "always" and not dirty:
        assert action == "remove"
    if policy == "on_done":
        assert (action == "remove") == (status == "done" and not dirty)


@given(
    st.sampled_from([None, "pending", "ready", "kept", "removed"]),
    st.sampled_from(["worktree", "absent", "other"]),
    st.booleans(),
)
def test_a_restart_reuses_what_is_there_and_never_starts_over_silently(
    recorded: str | None, path: str, branch: bool
) -> None:
    plan = plan_ensure(recorded, path, branch)  # type: ignore[arg-type]
    if path == "worktree":
        assert plan == "reuse"
    elif path == "other":
        assert plan == "occupied"
    elif branch:
        assert plan == "reattach"  # the folder vanished: its branch brings it back
    elif recorded == "ready":
        assert plan == "lost"  # work made, then gone: said so, not redone from base
    if plan == "create":
        assert recorded in (None, "pending") and not branch


def test_lock_errors_are_told_apart() -> None:
    assert is_lock_error(
        "fatal: Unable to create '/r/.git/index.lock': File exists.\n\nAnother git process..."
    )
    assert is_lock_error("error: cannot lock ref 'refs/heads/x': Unable to create")
    assert not is_lock_error("fatal: invalid reference: nope")
    assert [lock_backoff(n) for n in range(3)] == [0.05, 0.1, 0.2]
    assert lock_backoff(100) == 2.0


def test_urls_and_paths() -> None:
    assert is_url("https://github.com/a/b.git")
    assert is_url("git@github.com:a/b.git")
    assert is_url("file:///tmp/x")
    assert not is_url("./repo")
    assert not is_url("/abs/repo")
    assert mirror_name("https://github.com/a/b.git").startswith("b-")
    assert mirror_name("https://x/a/b.git") != mirror_name("https://y/a/b.git")


def test_a_bad_declaration_is_refused_with_a_clear_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="cleanup must be one of on_done, always, never"):
        GitWorkspace(cleanup="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="base must be a git ref"):
        GitWorkspace(base="")
    assert GitWorkspace(repo=tmp_path).repo == str(tmp_path)
