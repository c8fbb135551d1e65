"""`nfactory factories --graph ID` as a user runs it: a real process, real exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.test_graph import parse

REPO = Path(__file__).resolve().parents[1]
NFACTORY = Path(sys.executable).with_name("nfactory")

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    def run(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NFACTORY_")}
        env.update(
            NFACTORY_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
            NFACTORY_WORKFLOWS=str(REPO / "workflows"),
            COLUMNS="200",
        )
        if path is not None:
            env["PATH"] = path
        return subprocess.run(
            [str(NFACTORY), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def test_graph_prints_the_factory_as_mermaid(cli: Cli) -> None:
    result = cli("factories", "--graph", "writing")
    assert result.returncode == 0, result.stderr
    seen = parse(result.stdout.rstrip("\n"))
    labels = sorted(label.split(" (")[0] for _shape, label in seen["nodes"].values())
    assert labels == sorted(
        ["draft", "polish", "review", "ask_approval", "approval", "publish", "done", "failed"]
    )
    assert '    n1{{"polish (loop, at most 4, until complete)"}}' in result.stdout
    assert '    n4[/"approval (feedback: waits for a reply)"/]' in result.stdout
    assert '    n3 -->|"feedback"| n4' in result.stdout
    # no run, so no state is marked current
    assert "▶" not in result.stdout
    assert not [line for line in result.stdout.splitlines() if line.endswith(" current")]


def test_graph_of_an_unknown_factory_names_the_known_ones(cli: Cli) -> None:
    result = cli("factories", "--graph", "nope")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: unknown factory 'nope'; known factories: "
        "code_change, report, triage, writing, writing_flow"
    ]


def test_svg_without_a_renderer_says_how_to_get_one(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = cli("factories", "--graph", "triage", "--format", "svg", path=str(empty))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "mmdc" in line and "npm install -g @mermaid-js/mermaid-cli" in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "triage.svg").exists()


@pytest.mark.skipif(shutil.which("mmdc") is None, reason="the Mermaid CLI (mmdc) is not installed")
def test_svg_with_the_mermaid_cli_writes_a_picture(cli: Cli, tmp_path: Path) -> None:
    result = cli("factories", "--graph", "triage", "--format", "svg", "-o", "t.svg")
    assert result.returncode == 0, result.stderr
    svg = (tmp_path / "t.svg").read_text()
    assert "<svg" in svg and "classify" in svg and "needs_detail" in svg


def test_graph_goes_to_a_file_or_into_json_for_scripts(cli: Cli, tmp_path: Path) -> None:
    printed = cli("factories", "--graph", "report")
    assert printed.returncode == 0, printed.stderr
    written = cli("factories", "--graph", "report", "-o", "report.mmd")
    assert written.returncode == 0 and written.stdout.strip() == "wrote report.mmd"
    assert (tmp_path / "report.mmd").read_text() == printed.stdout
    as_json = cli("factories", "--graph", "report", "--json")
    assert json.loads(as_json.stdout) == {"factory": "report", "mermaid": printed.stdout[:-1]}
    nowhere = cli("factories", "--graph", "report", "-o", "missing/report.mmd")
    assert nowhere.returncode == 1
    assert nowhere.stderr.strip() == (
        "error: cannot write missing/report.mmd: No such file or directory"
    )


def test_format_and_output_without_graph_are_refused(cli: Cli) -> None:
    result = cli("factories", "--format", "svg")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --format and --output go with --graph ID"
