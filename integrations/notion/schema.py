"""The board's schema: what properties a notion-factory board needs, checked and repaired.

Pure: takes the data source's `properties` object as Notion returns it and
answers problems (with the exact fix) or the PATCH body that repairs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from factory.effects import BOARD_COLUMNS

# Distinct colours so a glance at the board tells the columns apart.
STATE_COLOURS: dict[str, str] = {
    "Queue": "gray",
    "Running": "blue",
    "Feedback": "yellow",
    "Done": "green",
    "Failed": "red",
    "Blocked": "orange",
    "Cancelled": "brown",
}
assert tuple(STATE_COLOURS) == BOARD_COLUMNS

NAME, STATE, FACTORY, STEP, ERROR = "Name", "State", "Factory", "Step", "Error"
EXPECTED_TYPES: dict[str, str] = {
    NAME: "title",
    STATE: "select",
    FACTORY: "select",
    STEP: "rich_text",
    ERROR: "rich_text",
}


@dataclass(frozen=True)
class SchemaProblem:
    property: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.property}: {self.problem}; fix: {self.fix}"


def initial_properties(factory_ids: Iterable[str]) -> dict[str, Any]:
    """Properties for a new board's data source."""
    return {
        NAME: {"title": {}},
        STATE: {"select": {"options": _state_options()}},
        FACTORY: {"select": {"options": [{"name": f} for f in sorted(factory_ids)]}},
        STEP: {"rich_text": {}},
        ERROR: {"rich_text": {}},
    }


def _state_options() -> list[dict[str, str]]:
    return [{"name": name, "color": colour} for name, colour in STATE_COLOURS.items()]


def check(properties: Mapping[str, Any], factory_ids: Iterable[str]) -> list[SchemaProblem]:
    problems: list[SchemaProblem] = []
    titles = [n for n, p in properties.items() if p.get("type") == "title"]
    for name, kind in EXPECTED_TYPES.items():
        prop = properties.get(name)
        if prop is None:
            if name == NAME and titles:
                problems.append(
                    SchemaProblem(
                        NAME,
                        f"the title property is called {titles[0]!r}",
                        f"rename {titles[0]!r} to {NAME!r} (or run `nfactory board setup`)",
                    )
                )
                continue
            problems.append(
                SchemaProblem(
                    name,
                    "missing",
                    f"add a {kind.replace('_', ' ')} property named {name!r} "
                    "(or run `nfactory board setup`)",
                )
            )
        elif prop.get("type") != kind:
            problems.append(
                SchemaProblem(
                    name,
                    f"is a {prop.get('type')} property, expected {kind}",
                    f"change {name!r} to type {kind} in Notion, or delete it and run "
                    "`nfactory board setup`",
                )
            )
    problems += _missing_options(properties, STATE, STATE_COLOURS)
    problems += _missing_options(properties, FACTORY, {f: None for f in factory_ids})
    return problems


def _missing_options(
    properties: Mapping[str, Any], name: str, wanted: Mapping[str, str | None]
) -> list[SchemaProblem]:
    prop = properties.get(name)
    if prop is None or prop.get("type") != "select":
        return []
    have = {o.get("name") for o in prop.get("select", {}).get("options", [])}
    missing = [o for o in wanted if o not in have]
    if not missing:
        return []
    return [
        SchemaProblem(
            name,
            f"select options missing: {', '.join(missing)}",
            f"add options {', '.join(missing)} to {name!r} (or run `nfactory board setup`)",
        )
    ]


def repair(properties: Mapping[str, Any], factory_ids: Iterable[str]) -> dict[str, Any] | None:
    """The `properties` PATCH for a data source that repairs what can be repaired safely.

    Adds missing properties and select options, keeps every existing option
    (removing one would clear it from cards), renames a differently named
    title. A property of the wrong type is left alone: converting it could
    destroy people's data, so that one is reported, not repaired.
    """
    factory_ids = list(factory_ids)
    patch: dict[str, Any] = {}
    wanted = initial_properties(factory_ids)
    titles = [n for n, p in properties.items() if p.get("type") == "title"]
    for name, kind in EXPECTED_TYPES.items():
        prop = properties.get(name)
        if prop is None:
            if name == NAME and titles:
                patch[titles[0]] = {"name": NAME}
            else:
                patch[name] = wanted[name]
        elif prop.get("type") == "select" and kind == "select":
            have = prop.get("select", {}).get("options", [])
            names = {o.get("name") for o in have}
            extra = [o for o in wanted[name]["select"]["options"] if o["name"] not in names]
            if extra:
                kept = [{k: o[k] for k in ("id", "name", "color") if k in o} for o in have]
                patch[name] = {"select": {"options": kept + extra}}
    return patch or None

