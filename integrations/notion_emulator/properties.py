"""Data source schemas and page property values.

Pure functions: schema requests become stored schema entries, page property
requests become stored payloads, and stored payloads become response property
values. Stored values are keyed by property *id* so a rename in the schema
does not orphan them, as in Notion.
"""

from __future__ import annotations

import copy
import random
import string
import urllib.parse
from collections.abc import Callable
from typing import Any

from . import errors, richtext
from .ids import new_id, parse_id

Schema = dict[str, dict[str, Any]]  # property id -> {"id","name","description","type",type: config}

WRITABLE = (
    "title",
    "rich_text",
    "number",
    "select",
    "multi_select",
    "status",
    "date",
    "people",
    "checkbox",
    "url",
    "email",
    "phone_number",
)
COMPUTED = ("created_time", "last_edited_time", "created_by", "last_edited_by")
SUPPORTED = WRITABLE + COMPUTED

_rng = random.Random()
_ID_CHARS = string.ascii_letters + string.digits + ":;<=>?@[]^_`{|}~"


def new_property_id() -> str:
    # Notion's property ids are short, opaque and URL-encoded ("%3AUPp").
    return urllib.parse.quote("".join(_rng.choice(_ID_CHARS) for _ in range(4)), safe="")


def new_option_id() -> str:
    # Select, multi-select and status options (and status groups) have UUID ids.
    return new_id()


def _option(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise errors.body_invalid(f"{path}.name", "should be a string", raw)
    if "," in raw["name"]:
        raise errors.validation(f"Invalid select option, commas not allowed: {raw['name']}")
    color = raw.get("color", "default")
    if color not in richtext.COLORS or color.endswith("_background"):
        raise errors.body_invalid(f"{path}.color", "should be a valid option color", color)
    return {
        "id": raw.get("id") or new_option_id(),
        "name": raw["name"],
        "color": color,
        "description": raw.get("description"),
    }


def _default_status() -> dict[str, Any]:
    todo = {"id": new_option_id(), "name": "Not started", "color": "default", "description": None}
    doing = {"id": new_option_id(), "name": "In progress", "color": "blue", "description": None}
    done = {"id": new_option_id(), "name": "Done", "color": "green", "description": None}
    return {
        "options": [todo, doing, done],
        "groups": [
            {"id": new_option_id(), "name": "To-do", "color": "gray", "option_ids": [todo["id"]]},
            {
                "id": new_option_id(),
                "name": "In progress",
                "color": "blue",
                "option_ids": [doing["id"]],
            },
            {
                "id": new_option_id(),
                "name": "Complete",
                "color": "green",
                "option_ids": [done["id"]],
            },
        ],
    }


def _config(kind: str, raw: Any, path: str, previous: dict[str, Any] | None) -> dict[str, Any]:
    raw = raw if isinstance(raw, dict) else {}
    if kind == "number":
        return {"format": raw.get("format", (previous or {}).get("format", "number"))}
    if kind in ("select", "multi_select"):
        if "options" not in raw:
            return copy.deepcopy(previous) if previous else {"options": []}
        options = richtext.check_array(raw["options"], f"{path}.options")
        known = {o["name"]: o for o in (previous or {}).get("options", [])}
        out = []
        for i, opt in enumerate(options):
            made = _option(opt, f"{path}.options[{i}]")
            if made["name"] in known and "id" not in opt:
                made["id"] = known[made["name"]]["id"]
            out.append(made)
        return {"options": out}
    if kind == "status":
        config = copy.deepcopy(previous) if previous else _default_status()
        if "options" in raw:
            for i, opt in enumerate(richtext.check_array(raw["options"], f"{path}.options")):
                made = _option(opt, f"{path}.options[{i}]")
                if all(o["name"] != made["name"] for o in config["options"]):
                    config["options"].append(made)
                    config["groups"][0]["option_ids"].append(made["id"])
        return config
    return {}


def schema_entry(
    name: str, raw: Any, path: str, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One property of a create/update data source request to its stored form."""
    if not isinstance(raw, dict):
        raise errors.body_invalid(path, "should be an object", raw)
    kind = raw.get("type") or next((k for k in raw if k in SUPPORTED), None)
    if kind is None and previous is not None:
        kind = previous["type"]
    if kind not in SUPPORTED:
        raise errors.body_invalid(
            path, f"should be one of the supported property types {list(SUPPORTED)}", raw
        )
    same = previous is not None and previous["type"] == kind
    return {
        "id": "title" if kind == "title" else (previous["id"] if previous else new_property_id()),
        "name": raw.get("name", name) if previous is None else raw.get("name", previous["name"]),
        "description": raw.get("description", previous["description"] if previous else None),
        "type": kind,
        kind: _config(kind, raw.get(kind), f"{path}.{kind}", previous[kind] if same else None),
    }


def build_schema(raw: Any, path: str) -> Schema:
    if not isinstance(raw, dict):
        raise errors.body_invalid(path, "should be an object", raw)
    schema: Schema = {}
    for name, spec in raw.items():
        entry = schema_entry(name, spec, f"{path}.{name}")
        schema[entry["id"]] = entry
    titles = [e for e in schema.values() if e["type"] == "title"]
    if len(titles) != 1:
        raise errors.validation("Data source must have exactly one title property.")
    return schema


def find(schema: Schema, key: str) -> dict[str, Any] | None:
    """Look a property up by name or by id, as filters and updates may use either."""
    for entry in schema.values():
        if entry["name"] == key:
            return entry
    return schema.get(key) or schema.get(urllib.parse.quote(key, safe=""))


def update_schema(schema: Schema, raw: Any, path: str) -> Schema:
    if not isinstance(raw, dict):
        raise errors.body_invalid(path, "should be an object", raw)
    out = copy.deepcopy(schema)
    for key, spec in raw.items():
        current = find(out, key)
        if spec is None:
            if current is None:
                raise errors.validation(f"{key} is not a property that exists.")
            if current["type"] == "title":
                raise errors.validation("Cannot delete the title property.")
            del out[current["id"]]
            continue
        entry = schema_entry(key, spec, f"{path}.{key}", current)
        if current is None and entry["type"] == "title":
            # There is one title per data source: a new title spec updates it.
            title = next(e for e in out.values() if e["type"] == "title")
            entry = schema_entry(title["name"], spec, f"{path}.{key}", title)
        out[entry["id"]] = entry
    return out


def default_status(entry: dict[str, Any]) -> dict[str, Any] | None:
    config = entry["status"]
    first_ids = config["groups"][0]["option_ids"] if config["groups"] else []
    for option in config["options"]:
        if not first_ids or option["id"] in first_ids:
            return {"id": option["id"], "name": option["name"], "color": option["color"]}
    return None


def current_options(entry: dict[str, Any], value: Any) -> Any:
    """Re-read select/status/multi_select values through the schema.

    Values keep only the option id that matters: a renamed or recoloured option
    shows its new name and colour, a deleted one disappears, as on Notion.
    """
    kind = entry["type"]
    if kind not in ("select", "status", "multi_select") or not value:
        return value
    options = {o["id"]: o for o in entry[kind]["options"]}

    def fresh(item: dict[str, Any]) -> dict[str, Any] | None:
        option = options.get(item["id"])
        if option is None:
            return None
        return {"id": option["id"], "name": option["name"], "color": option["color"]}

    if kind == "multi_select":
        return [f for f in (fresh(item) for item in value) if f is not None]
    return fresh(value)


def empty_value(kind: str) -> Any:
    if kind in ("title", "rich_text", "multi_select", "people"):
        return []
    if kind == "checkbox":
        return False
    return None


def _lookup_option(entry: dict[str, Any], raw: Any, name: str, create: bool) -> dict[str, Any]:
    kind = entry["type"]
    if not isinstance(raw, dict) or not (
        isinstance(raw.get("name"), str) or isinstance(raw.get("id"), str)
    ):
        raise errors.validation(f"{name} is expected to be {kind}.")
    options = entry[kind]["options"]
    for opt in options:
        if opt["id"] == raw.get("id") or opt["name"] == raw.get("name"):
            return {"id": opt["id"], "name": opt["name"], "color": opt["color"]}
    if not create or "name" not in raw:
        wanted = raw.get("name") or raw.get("id")
        raise errors.validation(
            f'Invalid {kind} option. {kind.capitalize()} option "{wanted}" does not exist.'
        )
    made = _option(raw, name)
    options.append(made)  # Notion adds unknown select options to the schema on write.
    return {"id": made["id"], "name": made["name"], "color": made["color"]}


def normalize_value(
    entry: dict[str, Any], raw: Any, path: str, user_exists: Callable[[str], bool]
) -> Any:
    """A request property value to its stored payload; may add select options to `entry`."""
    kind = entry["type"]
    name = entry["name"]
    if kind in COMPUTED:
        raise errors.validation(f"{name} is a read-only property ({kind}).")
    if isinstance(raw, list) and kind in ("title", "rich_text", "multi_select", "people"):
        value = raw
    elif isinstance(raw, dict) and kind in raw:
        value = raw[kind]
    else:
        raise errors.validation(f"{name} is expected to be {kind}.")
    sub = f"{path}.{kind}"
    if kind in ("title", "rich_text"):
        return richtext.normalize(value, sub)
    if kind == "number":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise errors.body_invalid(sub, "should be a number or `null`", value)
        return value
    if kind == "checkbox":
        if not isinstance(value, bool):
            raise errors.body_invalid(sub, "should be a boolean", value)
        return value
    if kind in ("url", "email", "phone_number"):
        if value is not None and not isinstance(value, str):
            raise errors.body_invalid(sub, "should be a string or `null`", value)
        if kind == "url" and isinstance(value, str) and len(value) > richtext.MAX_URL:
            raise errors.too_long(sub, richtext.MAX_URL, len(value))
        return value or None
    if kind in ("select", "status"):
        if value is None:
            return None
        return _lookup_option(entry, value, name, create=kind == "select")
    if kind == "multi_select":
        items = richtext.check_array(value, sub)
        return [_lookup_option(entry, item, name, create=True) for item in items]
    if kind == "date":
        if value is None:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("start"), str):
            raise errors.body_invalid(f"{sub}.start", "should be a string", value)
        return {
            "start": value["start"],
            "end": value.get("end"),
            "time_zone": value.get("time_zone"),
        }
    if kind == "people":
        ids = []
        for i, person in enumerate(richtext.check_array(value, sub)):
            pid = parse_id(person.get("id")) if isinstance(person, dict) else None
            if pid is None:
                raise errors.body_invalid(f"{sub}[{i}].id", "should be a valid uuid", person)
            if not user_exists(pid):
                raise errors.validation(f"Could not find user with ID: {pid}.")
            ids.append(pid)
        return ids
    raise errors.validation(f"{name} is expected to be {kind}.")  # pragma: no cover
