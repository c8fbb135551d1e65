"""`nfactory workspaces`, `workspaces prune` and `doctor`, as a person runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.workspaces.gitrepo import IDENTITY, branches, git, make_repo

NFACTORY = Path(sys.executable).with_name("nfactory")


def flow_source(repo: str, base: str = "main", cleanup: str = "on_done") -> str:
    return textwrap.dedent(
        f"""
        from factory import GitWorkspace, action, define_factory, done, failed


        def work(inp):
            (inp.workspace / "out.txt").write_text(inp.title)
            if "dirty" in inp.title:
                return {{"status": "done"}}
            import subprocess
            subprocess.run(["git", "add", "-A"], cwd=inp.workspace, check=True)
            subprocess.run(["git", "commit", "-qm", inp.title], cwd=inp.workspace, check=True)
            return {{"status": "failed" if "fail" in inp.title else "done"}}


        FACTORY = define_factory(
            id="wsflow",
            start="work",
            states={{
                "work": action(work, on={{"done": "done", "failed": "failed"}}),
                "done": done(),
                "failed": failed(),
            }},
            workspace=GitWorkspace(repo={repo!r}, base={base!r}, cleanup={cleanup!r}),
        )
        """
    )


class Cli:
    def __init__(self, home: Path, flows: Path) -> None:
        self.home = home
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("NFACTORY_", "NOTION_"))
        }
        self.env.update(
            IDENTITY,
            NFACTORY_DATABASE_URL=f"sqlite:///{home / 'db.sqlite'}",
            NFACTORY_WORKFLOWS=str(flows),
            COLUMNS="250",
        )

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(NFACTORY), *args],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def setup(tmp_path: Path, repo: str = "project", **flow: str) -> Cli:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "wsflow.py").write_text(flow_source(repo, **flow))
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return Cli(home, flows)


def test_workspaces_lists_each_runs_worktree_and_prune_removes_finished_ones(
    tmp_path: Path,
) -> None:
    origin = make_repo(tmp_path / "home" / "project")
    cli = setup(tmp_path)  # repo="project": read from the folder the worker runs in
    ids = {
        title: cli.ok("task", "create", "--factory", "wsflow", "--title", title).strip()
        for title in ("Clean win", "Will fail", "Left dirty")
    }
    for task_id in ids.values():
        cli.ok("run", "--task", task_id)

    listed = json.loads(cli.ok("workspaces", "--json"))["workspaces"]
    by_card = {w["card"]: w for w in listed}
    # done and clean: removed by on_done, so not listed; the other two are kept
    assert set(by_card) == {"Will fail", "Left dirty"}
    for w in listed:
        assert w["state"] == "kept" and w["size"] > 0
        assert Path(w["path"]).parent == origin / ".nfactory" / "workspaces"
        assert w["branch"].startswith("nfactory/")
    table = cli.ok("workspaces")
    for column in ("card", "run", "branch", "path", "state", "size"):
        assert column in table
    assert "Will fail" in table and by_card["Left dirty"]["branch"] in table
    everything = json.loads(cli.ok("workspaces", "--json", "--all"))["workspaces"]
    assert {w["card"] for w in everything} == set(ids)

    pruned = cli.ok("workspaces", "prune")
    assert "pruned: 1 removed, 1 kept" in pruned and "uncommitted changes" in pruned
    assert not Path(by_card["Will fail"]["path"]).exists()
    assert Path(by_card["Left dirty"]["path"], "out.txt").read_text() == "Left dirty"
    assert by_card["Will fail"]["branch"] in branches(origin)  # its commits stay

    forced = cli.ok("workspaces", "prune", "--force")
    assert "pruned: 1 removed, 0 kept" in forced
    assert not Path(by_card["Left dirty"]["path"]).exists()
    assert cli.ok("workspaces").strip() == "no workspaces"


@pytest.mark.parametrize(
    ("setup_repo", "base", "reason"),
    [
        ("plain", "main", "is not a git repository"),
        ("empty", "main", "has no commits yet"),
        ("ok", "nope", "'nope' is not a commit"),
        ("none", "main", "does not exist"),
    ],
)
def test_doctor_says_what_to_fix_and_the_run_ends_blocked(
    tmp_path: Path, setup_repo: str, base: str, reason: str
) -> None:
    where = tmp_path / "home" / "project"
    if setup_repo == "plain":
        where.mkdir(parents=True)
    elif setup_repo == "empty":
        where.mkdir(parents=True)
        git(where, "init", "-q")
    elif setup_repo == "ok":
        make_repo(where)
    cli = setup(tmp_path, str(where), base=base)
    doctor = cli("doctor")
    assert doctor.returncode == 1
    line = next(x for x in doctor.stdout.splitlines() if "workspace" in x)
    assert line.startswith("FIX") and "wsflow" in line and reason in line, doctor.stdout

    task_id = cli.ok("task", "create", "--factory", "wsflow", "--title", "Doomed").strip()
    ran = cli.ok("run", "--task", task_id)
    assert "blocked" in ran and reason in ran, ran


def test_doctor_is_happy_with_a_good_workspace(tmp_path: Path) -> None:
    make_repo(tmp_path / "home" / "project")
    cli = setup(tmp_path)
    doctor = cli("doctor")
    line = next(x for x in doctor.stdout.splitlines() if "workspace" in x)
    assert line.startswith("OK") and "at main" in line, doctor.stdout


def test_a_git_url_is_mirrored_once_and_each_run_gets_a_worktree(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "upstream", {"a.txt": "upstream\n"})
    cli = setup(tmp_path, origin.as_uri(), cleanup="never")
    for title in ("One", "Two"):
        task_id = cli.ok("task", "create", "--factory", "wsflow", "--title", title).strip()
        assert "done" in cli.ok("run", "--task", task_id)
        (origin / "a.txt").write_text(f"upstream after {title}\n")  # the next run starts from it
        git(origin, "commit", "-qam", "moved on")
    listed = json.loads(cli.ok("workspaces", "--json"))["workspaces"]
    assert len(listed) == 2
    texts = {w["card"]: Path(w["path"], "a.txt").read_text() for w in listed}
    assert texts == {"One": "upstream\n", "Two": "upstream after One\n"}
    mirrors = list((cli.home / ".nfactory" / "repos").iterdir())
    assert len(mirrors) == 1 and mirrors[0].name.endswith(".git")
    for w in listed:
        assert Path(w["path"]).parent == cli.home / ".nfactory" / "workspaces"
        assert w["branch"] in branches(mirrors[0])
