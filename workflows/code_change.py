"""Code change: a coding agent edits the run's own worktree, a person reviews the diff.

    plan -> implement -> test -> review (a question on the card) -> commit -> done
                ^                   | "revise: <what to change>" (at most 3 rounds)
                +-------------------+

Each run works in its own git worktree on its own branch (`GitWorkspace`), so
two cards never edit one checkout. The agent is any command that takes the
prompt as its last argument (`claude -p`, `codex exec`, ...); the default is the
bundled stand-in (`python -m factory.stand_in_coder`), so this runs offline.
The page shows `git diff --stat` and the diff (clipped); "approve" commits on
the run's branch, and pushes only when NFACTORY_CODER_PUSH=1.

Its knobs are its own, read from the environment (and .env) when it loads:

    NFACTORY_CODER_REPO             the repository the worktrees come from (default ".")
    NFACTORY_CODER_COMMAND          the coding agent, shell-split; the prompt is appended,
                                    or replaces a `{prompt}` argument (default: the stand-in)
    NFACTORY_CODER_TEST_COMMAND     run in the worktree after each round
                                    (default: `git diff --check HEAD`)
    NFACTORY_CODER_PUSH             1: push the branch to the repository's remote on approve
    NFACTORY_CODER_TIMEOUT_SECONDS  for the agent and for the test command (default 1800)

See docs/agents.md for recipes with real coding agents.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from factory import (
    AgentInput,
    GitWorkspace,
    action,
    command_agent,
    define_factory,
    done,
    failed,
    feedback,
    orchestrate,
)
from factory.shell_agent import fenced, last_lines

MAX_ROUNDS = 3
DIFF_CLIP_CHARS = 4_000
STAND_IN = (sys.executable, "-m", "factory.stand_in_coder")
DEFAULT_TEST_COMMAND = "git diff --check HEAD"
# a commit on a fresh machine, where git knows nobody: GIT_AUTHOR_* / git config win
DEFAULT_IDENTITY = ("notion-factory", "notion-factory@localhost")
GIT_SECONDS = 300.0  # one git command (a push over a slow link included)
ROUND_HEADING = "Changes requested (round {n}):"  # the stand-in follows what comes after
# The agent acts on a card's text, which anyone on the board can write: it gets
# the worker's environment without the worker's own secrets.
WITHHELD_ENV = {"NOTION_TOKEN": "", "NOTION_WEBHOOK_SECRET": ""}


class CoderSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NFACTORY_CODER_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    repo: str = "."
    command: str = ""  # empty: the stand-in
    test_command: str = DEFAULT_TEST_COMMAND
    push: bool = False
    timeout_seconds: float = Field(default=1800.0, gt=0, le=86_400)


def load_settings() -> CoderSettings:
    """The workflow's settings, or one line naming each bad variable."""
    try:
        settings = CoderSettings()
    except ValidationError as exc:
        bad = "; ".join(
            f"NFACTORY_CODER_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ValueError(bad) from None
    for name, line in (("COMMAND", settings.command), ("TEST_COMMAND", settings.test_command)):
        try:
            shlex.split(line)
        except ValueError as exc:
            raise ValueError(
                f"NFACTORY_CODER_{name}: cannot be split like a shell: {exc}"
            ) from None
    if not settings.test_command.strip():
        raise ValueError("NFACTORY_CODER_TEST_COMMAND: is empty (unset it for the default)")
    return settings


# -- pure decisions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Approve:
    pass


@dataclass(frozen=True)
class Revise:
    note: str


@dataclass(frozen=True)
class Unclear:
    pass


Reply = Approve | Revise | Unclear

_APPROVE = re.compile(r"\s*(approve|approved|lgtm)[\s.!]*", re.IGNORECASE)
_REVISE = re.compile(r"\s*revise\b\s*:?(.*)", re.IGNORECASE | re.DOTALL)


def read_reply(text: str) -> Reply:
    """A person's reply to the review: only a plain "approve" approves (fails closed)."""
    if _APPROVE.fullmatch(text):
        return Approve()
    if (m := _REVISE.fullmatch(text)) and m[1].strip():
        return Revise(m[1].strip())
    return Unclear()


def build_prompt(title: str, description: str, round_no: int = 1, note: str = "") -> str:
    """The agent's prompt: the card, then on revise rounds the person's words."""
    parts = [title.strip()]
    if description.strip() and description.strip() != title.strip():
        parts.append(description.strip())
    if round_no > 1 and note.strip():
        parts.append(f"{ROUND_HEADING.format(n=round_no)}\n{note.strip()}")
    return "\n\n".join(parts)


def agent_argv(command: str, prompt: str) -> list[str]:
    """The agent's argv: `{prompt}` arguments replaced, else the prompt appended."""
    argv = shlex.split(command) if command.strip() else list(STAND_IN)
    if any("{prompt}" in a for a in argv):
        return [a.replace("{prompt}", prompt) for a in argv]
    return [*argv, prompt]


def clip(text: str, limit: int = DIFF_CLIP_CHARS) -> str:
    """The start of `text`, cut at a line end, with a note saying how much was left out."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if "\n" in cut:
        cut = cut[: cut.rindex("\n") + 1]
    return f"{cut}[... {len(text) - len(cut):,} more characters of the diff not shown ...]\n"


def review_step(reply: Reply, round_no: int, max_rounds: int = MAX_ROUNDS) -> dict[str, Any]:
    """What a reply to the review does: approve, another round, a limit reached, or ask again."""
    match reply:
        case Approve():
            return {
                "status": "done",
                "data": {"event": "approve", "review_pending": False},
                "message": "approved",
            }
        case Revise(note) if round_no >= max_rounds:
            return {
                "status": "failed",
                "data": {"review_pending": False},
                "message": (
                    f"revise asked after round {round_no} of {max_rounds}: no rounds left; "
                    f"the last request was: {note}"
                ),
            }
        case Revise(note):
            return {
                "status": "done",
                "data": {
                    "event": "revise",
                    "review_pending": False,
                    "round": round_no + 1,
                    "revise_note": note,
                },
                "message": f"round {round_no + 1} of {max_rounds}: revising: {note}",
            }
        case _:
            return {
                "status": "feedback",
                "data": {"review_pending": True},
                "message": "Please reply with approve or revise: <what to change>.",
            }


def review_page(
    round_no: int, branch: str, tests: str, stat: str, diff: str, max_rounds: int = MAX_ROUNDS
) -> str:
    parts = [f"## Review, round {round_no} of {max_rounds}", f"Branch `{branch}`. {tests}"]
    if diff.strip():
        parts += [fenced(stat.rstrip("\n") or "(no stat)"), fenced(clip(diff).rstrip("\n"), "diff")]
    else:
        parts.append("The agent changed no file.")
    return "\n\n".join(parts)


def redact_url_credentials(text: str) -> str:
    """git may echo a remote URL with a token in it: never let it reach the card."""
    return re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@", r"\1***@", text)


# -- the shell: git in the worktree --------------------------------------------------------


class GitError(RuntimeError):
    pass


async def git(cwd: Path, *args: str, check: bool = True) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # a push must fail, not wait for a password nobody will type
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GIT_SECONDS)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    code = proc.returncode if proc.returncode is not None else -1
    text, errors = out.decode(errors="replace"), err.decode(errors="replace")
    if check and code != 0:
        why = redact_url_credentials(last_lines(errors or text, 5)) or f"exit {code}"
        raise GitError(f"git {args[0]} failed in {cwd}: {why}")
    return code, text, errors


def worktree(inp: AgentInput) -> Path:
    if inp.workspace is None:
        raise RuntimeError("code_change needs its run's worktree (GitWorkspace), and has none")
    return inp.workspace


async def identity_args(cwd: Path) -> list[str]:
    """`-c user.name=… -c user.email=…` where git's config has none.

    GIT_AUTHOR_* / GIT_COMMITTER_* in the environment still win over these, as
    over any config; without them a fresh machine would refuse to commit.
    """
    args: list[str] = []
    for key, value in zip(("user.name", "user.email"), DEFAULT_IDENTITY, strict=True):
        code, out, _ = await git(cwd, "config", "--get", key, check=False)
        if code != 0 or not out.strip():
            args += ["-c", f"{key}={value}"]
    return args


async def push_remote(cwd: Path) -> str:
    _, out, _ = await git(cwd, "remote")
    remotes = out.split()
    if "origin" in remotes:
        return "origin"
    if len(remotes) == 1:
        return remotes[0]
    raise GitError(
        "NFACTORY_CODER_PUSH=1 but the repository has "
        + (
            f"several remotes and none is 'origin' ({', '.join(remotes)})"
            if remotes
            else "no remote"
        )
    )


# -- the agents ----------------------------------------------------------------------------


def make_agents(settings: CoderSettings) -> dict[str, Callable[[AgentInput], Awaitable[Any]]]:
    coder_line = settings.command or "python -m factory.stand_in_coder (the offline stand-in)"

    async def plan(inp: AgentInput) -> dict[str, Any]:
        cwd = worktree(inp)
        _, base, _ = await git(cwd, "rev-parse", "HEAD")
        _, branch, _ = await git(cwd, "branch", "--show-current")
        request = build_prompt(inp.title, inp.context)
        page = "\n".join(
            [
                "## Plan",
                f"1. Implement: `{coder_line}` in this run's worktree, branch "
                f"`{branch.strip()}`, with the card as its prompt.",
                f"2. Test: `{settings.test_command}`.",
                f"3. Review: the diff comes here; reply **approve** or **revise: <what to "
                f"change>** (at most {MAX_ROUNDS} rounds).",
                "4. On approve: commit on the branch"
                + (", then push it." if settings.push else " (not pushed)."),
                "",
                "Request:",
                fenced(clip(request, 1_000)),
            ]
        )
        steps = "implement, test, review" + (", commit, push" if settings.push else ", commit")
        data = {
            "plan": f"{steps} on {branch.strip()}, at most {MAX_ROUNDS} rounds",
            "round": 1,
            "base_commit": base.strip(),
            "branch": branch.strip(),
        }
        return {"status": "done", "data": data, "page": page, "message": "plan written"}

    async def implement(inp: AgentInput) -> dict[str, Any]:
        cwd = worktree(inp)
        round_no = int(inp.ctx.get("round", 1))
        prompt = build_prompt(inp.title, inp.context, round_no, str(inp.ctx.get("revise_note", "")))
        argv = agent_argv(settings.command, prompt)
        run = command_agent(argv, cwd=cwd, env=WITHHELD_ENV, timeout=settings.timeout_seconds)
        try:
            result = await run(inp)
        except FileNotFoundError:
            raise RuntimeError(f"NFACTORY_CODER_COMMAND: {argv[0]!r} not found") from None
        if result["status"] == "done":
            # new files show in `git diff` (and its --check) only once git knows of them
            await git(cwd, "add", "--intent-to-add", "--all")
        return {**result, "message": f"round {round_no}: {result['message']}"}

    async def test(inp: AgentInput) -> dict[str, Any]:
        cwd = worktree(inp)
        argv = shlex.split(settings.test_command)
        run = command_agent(argv, cwd=cwd, env=WITHHELD_ENV, timeout=settings.timeout_seconds)
        try:
            result = await run(inp)
        except FileNotFoundError:
            raise RuntimeError(f"NFACTORY_CODER_TEST_COMMAND: {argv[0]!r} not found") from None
        passed = result["status"] == "done"
        summary = "tests passed" if passed else f"TESTS FAILED: {result['message']}"
        # a failing test goes to the person too: they decide to revise (or approve anyway)
        return {
            "status": "done",
            "data": {"tests_passed": passed, "test_summary": summary},
            "message": summary,
            "page": result.get("page", ""),
        }

    async def review(inp: AgentInput) -> dict[str, Any]:
        round_no = int(inp.ctx.get("round", 1))
        if inp.ctx.get("review_pending"):  # back from the question with a reply
            return review_step(read_reply(str(inp.ctx.get("human_feedback", ""))), round_no)
        cwd = worktree(inp)
        base = str(inp.ctx.get("base_commit") or "HEAD")
        _, stat, _ = await git(cwd, "diff", "--stat", base)
        _, diff, _ = await git(cwd, "diff", base)
        branch = str(inp.ctx.get("branch", ""))
        tests = f"Test command `{settings.test_command}`: {inp.ctx.get('test_summary', '?')}."
        changed = last_lines(stat, 1).strip() or "no file changed"
        question = (
            f"Round {round_no} of {MAX_ROUNDS}: the change is on the page ({changed}; "
            f"{inp.ctx.get('test_summary', '?')}). Reply approve to commit it on {branch}, "
            "or revise: <what to change>."
        )
        return {
            "status": "feedback",
            "data": {"review_pending": True},
            "message": question,
            "page": review_page(round_no, branch, tests, stat, diff),
        }

    async def commit(inp: AgentInput) -> dict[str, Any]:
        cwd = worktree(inp)
        branch = str(inp.ctx.get("branch") or "")
        inp.progress("committing")
        await git(cwd, "add", "--all")
        staged, _, _ = await git(cwd, "diff", "--cached", "--quiet", check=False)
        if staged == 0:
            _, head, _ = await git(cwd, "rev-parse", "HEAD")
            if head.strip() == inp.ctx.get("base_commit"):
                return {"status": "done", "message": "approved; nothing to commit"}
        else:
            body = f"From the card {inp.title!r} (notion-factory run {inp.run_id})."
            who = await identity_args(cwd)
            message = inp.title.strip() or "notion-factory change"
            await git(cwd, *who, "commit", "--quiet", "-m", message, "-m", body)
        _, sha, _ = await git(cwd, "rev-parse", "HEAD")
        sha = sha.strip()
        data: dict[str, Any] = {"commit": sha, "pushed": False}
        said = f"committed {sha[:12]} on {branch}"
        if settings.push:
            remote = await push_remote(cwd)
            inp.progress(f"pushing {branch} to {remote}")
            code, _, err = await git(cwd, "push", remote, f"HEAD:refs/heads/{branch}", check=False)
            if code != 0:
                why = redact_url_credentials(last_lines(err, 5)) or f"exit {code}"
                return {
                    "status": "failed",
                    "data": data,
                    "message": f"{said}, but git push to {remote!r} failed: {why}",
                }
            data["pushed"] = True
            said += f" and pushed to {remote}"
        return {"status": "done", "data": data, "message": said, "page": f"**{said}**"}

    return {"plan": plan, "implement": implement, "test": test, "review": review, "commit": commit}


def build_factory(settings: CoderSettings) -> Any:
    agents = make_agents(settings)
    return define_factory(
        id="code_change",
        start="plan",
        workspace=GitWorkspace(repo=settings.repo, base="HEAD", cleanup="on_done"),
        context={"round": 1},
        states={
            "plan": action(agents["plan"], on={"done": "implement", "failed": "failed"}),
            "implement": action(agents["implement"], on={"done": "test", "failed": "failed"}),
            "test": action(agents["test"], on={"done": "review", "failed": "failed"}),
            "review": orchestrate(
                agent=agents["review"],
                on={
                    "approve": "commit",
                    "revise": "implement",
                    "feedback": "awaiting_review",
                    # no "failed" route: a failure here (no rounds left) ends the run
                    # Failed with its reason as the card's error
                },
            ),
            "awaiting_review": feedback(resume="previous"),
            "commit": action(agents["commit"], on={"done": "done", "failed": "failed"}),
            "done": done(),
            "failed": failed(),
        },
    )


FACTORY = build_factory(load_settings())
