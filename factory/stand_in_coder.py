"""A deterministic stand-in for a coding agent, so the coding workflow runs offline.

    python -m factory.stand_in_coder "create hello.txt with Hello"
    echo "append more to hello.txt" | python -m factory.stand_in_coder

The prompt is the arguments joined by spaces, as `claude -p PROMPT` or
`codex exec PROMPT` take it; with no arguments it is read from stdin. It
edits files under the current directory (the run's worktree), one
instruction per line, keywords in any case, a leading "- " allowed:

    create PATH with TEXT           the file holds TEXT and a newline (made or overwritten)
    append TEXT to PATH             TEXT and a newline added at the end (file made if missing)
    replace OLD with NEW in PATH    every OLD becomes NEW; OLD must be in the file

TEXT, OLD and NEW may be wrapped in one pair of double quotes, which are
dropped. Other lines (a card's title, prose) are context and ignored. If a
line `Changes requested (round N):` is present, only the lines after the last
one are followed: the earlier requests are already in the worktree, as a real
agent would see. A prompt with no instruction at all is recorded in NOTES.md,
as a person's request the stand-in cannot carry out itself.

It prints one progress line per step. Exit 0 when every instruction was
carried out; exit 2, naming the instruction, when one is impossible (a path
outside the folder, a directory, OLD not found): files already edited stay as
they are, as a real agent's would.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

# The heading the coding workflow puts before a reviewer's words on revise rounds.
ROUND_HEADING = re.compile(r"^changes requested \(round \d+\):\s*$", re.IGNORECASE)
NOTES = "NOTES.md"

_CREATE = re.compile(r"^create\s+(\S+)\s+with\s(.*)$", re.IGNORECASE | re.DOTALL)
_APPEND = re.compile(r"^append\s(.*)\sto\s+(\S+)$", re.IGNORECASE | re.DOTALL)
_REPLACE = re.compile(r"^replace\s(.*?)\swith\s(.*)\sin\s+(\S+)$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Create:
    path: str
    text: str


@dataclass(frozen=True)
class Append:
    path: str
    text: str


@dataclass(frozen=True)
class Replace:
    path: str
    old: str
    new: str


Instruction = Create | Append | Replace


class Impossible(Exception):
    """An instruction that cannot be carried out; the message says which and why."""


def unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def parse_line(line: str) -> Instruction | None:
    """The instruction a line states, or None for context."""
    line = line.strip()
    if line.startswith("- "):
        line = line[2:].lstrip()
    if m := _CREATE.match(line):
        return Create(m[1], unquote(m[2]))
    if m := _APPEND.match(line):
        return Append(m[2], unquote(m[1]))
    if m := _REPLACE.match(line):
        return Replace(m[3], unquote(m[1]), unquote(m[2]))
    return None


def current_request(prompt: str) -> str:
    """The part of the prompt still to do: after the last round heading, if any."""
    lines = prompt.splitlines()
    starts = [i for i, line in enumerate(lines) if ROUND_HEADING.match(line.strip())]
    return "\n".join(lines[starts[-1] + 1 :]) if starts else prompt


def parse_prompt(prompt: str) -> list[Instruction]:
    found = (parse_line(line) for line in current_request(prompt).splitlines())
    return [i for i in found if i is not None]


def describe(instruction: Instruction) -> str:
    match instruction:
        case Create(path, _):
            return f"create {path}"
        case Append(path, _):
            return f"append to {path}"
        case Replace(path, old, _):
            return f"replace {old!r} in {path}"


def resolve(root: Path, name: str) -> Path:
    """`name` under `root`, refusing anything that would land outside it."""
    target = (root / name).resolve()
    if target != root.resolve() and root.resolve() not in target.parents:
        raise Impossible(f"{name!r} is outside the working folder")
    if target.is_dir():
        raise Impossible(f"{name!r} is a directory")
    if ".git" in target.relative_to(root.resolve()).parts:
        raise Impossible(f"{name!r} is inside .git")
    return target


def apply(root: Path, instruction: Instruction) -> None:
    target = resolve(root, instruction.path)
    match instruction:
        case Create(_, text):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text + "\n", encoding="utf-8")
        case Append(_, text):
            target.parent.mkdir(parents=True, exist_ok=True)
            before = target.read_text(encoding="utf-8") if target.exists() else ""
            if before and not before.endswith("\n"):
                before += "\n"
            target.write_text(before + text + "\n", encoding="utf-8")
        case Replace(_, old, new):
            if not target.exists():
                raise Impossible(f"{instruction.path!r} does not exist")
            before = target.read_text(encoding="utf-8")
            if not old or old not in before:
                raise Impossible(f"{old!r} is not in {instruction.path!r}")
            target.write_text(before.replace(old, new), encoding="utf-8")


def note_request(root: Path, prompt: str) -> None:
    notes = root / NOTES
    before = notes.read_text(encoding="utf-8") if notes.exists() else "# Notes\n"
    request = current_request(prompt).strip() or "(an empty request)"
    notes.write_text(f"{before.rstrip()}\n\n## Request\n\n{request}\n", encoding="utf-8")


def run(root: Path, prompt: str) -> int:
    instructions = parse_prompt(prompt)
    if not instructions:
        print(f"stand-in coder: no instruction I can follow; noting the request in {NOTES}")
        note_request(root, prompt)
        print("stand-in coder: done, 1 file changed")
        return 0
    print(f"stand-in coder: {len(instructions)} instruction(s) to follow", flush=True)
    for n, instruction in enumerate(instructions, 1):
        print(f"stand-in coder: [{n}/{len(instructions)}] {describe(instruction)}", flush=True)
        try:
            apply(root, instruction)
        except (Impossible, OSError, UnicodeDecodeError) as e:
            print(f"stand-in coder: cannot {describe(instruction)}: {e}", file=sys.stderr)
            return 2
    touched = len({i.path for i in instructions})
    print(f"stand-in coder: done, {touched} file(s) changed")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    prompt = " ".join(args) if args else sys.stdin.read()
    return run(Path.cwd(), prompt)


if __name__ == "__main__":
    raise SystemExit(main())
