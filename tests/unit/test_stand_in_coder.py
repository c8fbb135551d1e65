"""The stand-in coding agent: what it does to a folder, as a person running it would see."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from factory.stand_in_coder import Append, Create, Replace, parse_line, parse_prompt, run


def coder(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "factory.stand_in_coder", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_follows_each_instruction_and_prints_progress(tmp_path: Path) -> None:
    prompt = (
        "Greet the world\n\n"
        "create docs/hello.txt with Hello\n"
        '- append "and goodbye" to docs/hello.txt\n'
        "Replace Hello with Hi in docs/hello.txt\n"
    )
    done = coder(tmp_path, prompt)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "docs/hello.txt").read_text() == "Hi\nand goodbye\n"
    assert "[1/3] create docs/hello.txt" in done.stdout
    assert "[3/3] replace 'Hello' in docs/hello.txt" in done.stdout
    assert not (tmp_path / "NOTES.md").exists()


def test_the_prompt_may_come_on_stdin(tmp_path: Path) -> None:
    done = coder(tmp_path, stdin="create a.txt with from stdin\n")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.txt").read_text() == "from stdin\n"


def test_a_request_it_cannot_follow_is_noted_in_notes_md(tmp_path: Path) -> None:
    assert coder(tmp_path, "Make the login page faster").returncode == 0
    assert coder(tmp_path, "And add dark mode").returncode == 0
    notes = (tmp_path / "NOTES.md").read_text()
    assert notes.index("Make the login page faster") < notes.index("And add dark mode")
    assert notes.count("## Request") == 2


def test_impossible_instructions_exit_non_zero_naming_them(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / "dir").mkdir()
    for prompt, says in [
        ("replace two with three in a.txt", "'two' is not in 'a.txt'"),
        ("replace x with y in missing.txt", "'missing.txt' does not exist"),
        ("create ../escape.txt with no", "'../escape.txt' is outside the working folder"),
        ("create /etc/passwd with no", "is outside the working folder"),
        ("create dir with text", "'dir' is a directory"),
        ("create .git/config with x", "inside .git"),
    ]:
        done = coder(tmp_path, prompt)
        assert done.returncode == 2, prompt
        assert says in done.stderr, (prompt, done.stderr)
    assert (tmp_path / "a.txt").read_text() == "one\n"
    assert not (tmp_path.parent / "escape.txt").exists()


def test_on_a_revise_round_only_the_new_request_is_followed(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Hello\n")  # round 1 already ran
    prompt = (
        "Greeting\n\ncreate a.txt with Hello\nreplace Hello with Hi in a.txt\n\n"
        "Changes requested (round 2):\nappend Bye to a.txt\n"
    )
    assert parse_prompt(prompt) == [Append("a.txt", "Bye")]
    assert run(tmp_path, prompt) == 0
    assert (tmp_path / "a.txt").read_text() == "Hello\nBye\n"


# -- properties ------------------------------------------------------------------------

paths = st.from_regex(r"[a-z][a-z0-9_]{0,8}(/[a-z0-9_]{1,8}){0,2}\.txt", fullmatch=True)
# one line of text; surrounding quotes are always written, so any text reads back whole
texts = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=40
)


@given(paths, texts)
def test_create_and_append_read_back_whatever_the_text(path: str, text: str) -> None:
    assert parse_line(f'create {path} with "{text}"') == Create(path, text)
    assert parse_line(f'- APPEND "{text}" to {path}') == Append(path, text)


@given(paths, texts.filter(lambda t: " with " not in t and "\n" not in t), texts)
def test_replace_reads_back(path: str, old: str, new: str) -> None:
    assert parse_line(f'replace "{old}" with "{new}" in {path}') == Replace(path, old, new)


def _has_keyword(line: str) -> bool:
    line = line.strip()
    line = line[2:].lstrip() if line.startswith("- ") else line
    return re.match(r"(create|append|replace)\s", line, re.IGNORECASE) is not None


@given(st.text(max_size=60).filter(lambda t: not _has_keyword(t)))
def test_a_line_without_a_keyword_is_context(line: str) -> None:
    assert parse_line(line) is None


step = st.one_of(st.builds(Create, paths, texts), st.builds(Append, paths, texts))


@given(st.lists(step, min_size=1, max_size=8))
def test_the_folder_ends_as_the_instructions_say(steps: list[Create | Append]) -> None:
    model: dict[str, str] = {}
    for s in steps:
        model[s.path] = (model.get(s.path, "") if isinstance(s, Append) else "") + s.text + "\n"
    kind = {Create: 'create {p} with "{t}"', Append: 'append "{t}" to {p}'}
    prompt = "\n".join(kind[type(s)].format(p=s.path, t=s.text) for s in steps)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        assert run(root, prompt) == 0  # folders never end in .txt: no path is both
        assert {str(p.relative_to(root)): p.read_text() for p in root.rglob("*.txt")} == model
