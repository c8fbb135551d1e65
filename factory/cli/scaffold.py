"""`nfactory new ID`: a factory module and its test, written into the workflows folder.

The id must work both as the card's Factory value and as a module name its
neighbours can import, so it is a Python identifier that the loader does not
skip (`_x`, `test_x`) and that does not hide a module of the same name. Nothing
is ever overwritten, and an id a loaded factory already has is refused.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
from pathlib import Path
from typing import Annotated

import typer

from factory.loader import load_factories
from factory.settings import load_settings
from factory.terminal import shown

ID = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")

MODULE = '''"""The {id} factory: a card's title becomes a short page, then the card is Done.

Written by `nfactory new {id}`; make it yours. Try it on the local board:
    nfactory task create --factory {id} --title "Try it"
    nfactory run --task <the id it printed>
Test it: pytest {test}. Neighbour modules in this folder import by name
(`from common import helper`). The guide: docs/authoring.md.
"""

from __future__ import annotations

from factory import AgentInput, Backoff, Retries, action, define_factory, done, failed


def write_page(inp: AgentInput) -> dict[str, object]:
    """An agent: call a model, a script or a command here. What it returns moves the card
    (status), joins the run's context (data), and shows on the card (message, page)."""
    greeting = f"Hello from {id}: {{inp.title}}"
    return {{
        "status": "done",
        "data": {{"greeting": greeting}},
        "message": "page written",
        "page": f"## {{greeting}}\\n\\n{{inp.context or 'The card has no description.'}}\\n",
    }}


FACTORY = define_factory(
    id="{id}",
    start="write_page",
    states={{
        "write_page": action(
            write_page,
            on={{"done": "done", "failed": "failed"}},
            retries=Retries(max=2, backoff=Backoff("exponential", ms=500, max_ms=5000)),
        ),
        "done": done(),
        "failed": failed(),
    }},
)
'''

TEST = '''"""Tests of the {id} factory: pytest {test}"""

from __future__ import annotations

from pathlib import Path

from factory import Factory
from factory.loader import load_factories
from factory.testing import FactoryHarness


def load() -> Factory:
    """The factory loaded as the worker loads it, with every problem the loader finds."""
    catalog = load_factories([Path(__file__).with_name("{id}.py")])
    assert catalog.problems == []
    return catalog.factories["{id}"]


def test_a_card_ends_done_with_its_page() -> None:
    card = FactoryHarness(load()).card("Say hello", context="A first card.").run()
    assert card.status == "done"
    assert card.path == ["write_page", "done"]
    assert "Hello from {id}: Say hello" in card.page
    assert "A first card." in card.page


def test_a_failing_agent_is_retried_then_the_card_fails() -> None:
    def broken(inp: object) -> dict[str, object]:
        raise ConnectionError("service down")

    card = FactoryHarness(load(), agents={{"write_page": broken}}).card("Say hello").run()
    assert card.status == "failed"
    assert card.path == ["write_page", "write_page", "write_page", "failed"]
    assert "service down" in (card.error or "")
'''


def new(
    factory_id: Annotated[
        str, typer.Argument(metavar="ID", help="The new factory's id, also its module's name.")
    ],
) -> None:
    """Write a factory module ID.py and its test test_ID.py into the workflows folder."""
    problem = invalid_id(factory_id)
    if problem:
        raise ValueError(f"cannot use {factory_id!r} as a factory id: {problem}")
    settings = load_settings()
    folder = target_folder(settings.workflows)
    module, test = folder / f"{factory_id}.py", folder / f"test_{factory_id}.py"
    for path in (module, test, folder / factory_id):
        if path.exists():
            raise ValueError(f"{path} already exists; nothing written (pick another id)")
    catalog = load_factories(settings.workflows)
    existing = catalog.factories.get(factory_id)
    if existing is not None:
        raise ValueError(f"factory id {factory_id!r} is already defined in {existing.source}")
    folder.mkdir(parents=True, exist_ok=True)
    shown_test = _relative(test)
    written: list[Path] = []
    try:
        for path, template in ((module, MODULE), (test, TEST)):
            with path.open("x", encoding="utf-8") as file:  # "x": never overwrite, even in a race
                written.append(path)
                file.write(template.format(id=factory_id, test=shown_test))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    typer.echo(f"wrote {shown(_relative(module))} and {shown(shown_test)}")
    typer.echo(
        f'next: nfactory task create --factory {factory_id} --title "Try it", then '
        f"nfactory run --task <id>; pytest {shown(shown_test)} runs its tests "
        "(on a Notion board, `nfactory board setup` adds it to the Factory options)"
    )


def invalid_id(factory_id: str) -> str | None:
    """Why `factory_id` cannot name a new factory module, or None."""
    if not ID.fullmatch(factory_id):
        return (
            "use a letter, then letters, digits or _ (at most 64), so that it is also "
            "a Python module name"
        )
    if keyword.iskeyword(factory_id) or keyword.issoftkeyword(factory_id):
        return "it is a Python keyword"
    if factory_id.startswith("test_"):
        return "modules named test_* are tests, which the loader skips"
    try:
        taken = importlib.util.find_spec(factory_id) is not None
    except (ImportError, ValueError):
        taken = True
    if taken:
        return f"it would hide the Python module {factory_id!r} from its neighbours"
    return None


def target_folder(paths: list[str]) -> Path:
    """The first NFACTORY_WORKFLOWS folder (created when it does not exist yet)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir() or (not path.exists() and path.suffix != ".py"):
            return path
    shown_paths = ",".join(paths) or "(empty)"
    raise ValueError(f"NFACTORY_WORKFLOWS={shown_paths} names no folder to write a factory into")


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
