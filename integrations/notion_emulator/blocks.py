"""Block requests to stored block specs, with Notion's limits.

A request's `children` become `BlockSpec`s (type, response payload, nested
specs). Payloads are stored in response form, with every default Notion fills
in, so rendering a block is a copy plus the common envelope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import errors, richtext

MAX_BLOCKS_PER_APPEND = 100
MAX_BLOCKS_PER_REQUEST = 1000
MAX_NESTING = 2  # levels of children below the appended blocks

TEXT_TYPES = (
    "paragraph",
    "heading_1",
    "heading_2",
    "heading_3",
    "bulleted_list_item",
    "numbered_list_item",
    "to_do",
    "quote",
    "callout",
    "toggle",
    "code",
)
SUPPORTED = (*TEXT_TYPES, "divider")
# Types whose blocks may hold children in Notion.
NESTABLE = frozenset(
    {"paragraph", "bulleted_list_item", "numbered_list_item", "to_do", "quote", "callout", "toggle"}
)
CODE_LANGUAGES_DEFAULT = "plain text"
# Notion's closed enum of code block languages (API reference, block object "code"):
# any other value is a 400 for the whole request.
CODE_LANGUAGES = frozenset(
    [
        "abap", "abc", "agda", "arduino", "ascii art", "assembly", "bash", "basic", "bnf", "c",
        "c#", "c++", "clojure", "coffeescript", "coq", "css", "dart", "dhall", "diff", "docker",
        "ebnf", "elixir", "elm", "erlang", "f#", "flow", "fortran", "gherkin", "glsl", "go",
        "graphql", "groovy", "haskell", "hcl", "html", "idris", "java", "javascript", "json",
        "julia", "kotlin", "latex", "less", "lisp", "livescript", "llvm ir", "lua", "makefile",
        "markdown", "markup", "matlab", "mathematica", "mermaid", "nix", "notion formula",
        "objective-c", "ocaml", "pascal", "perl", "php", "plain text", "powershell", "prolog",
        "protobuf", "purescript", "python", "r", "racket", "reason", "ruby", "rust", "sass",
        "scala", "scheme", "scss", "shell", "smalltalk", "solidity", "sql", "swift", "toml",
        "typescript", "vb.net", "verilog", "vhdl", "visual basic", "webassembly", "xml", "yaml",
        "java/c/c++/c#",
    ]
)  # fmt: skip


@dataclass
class BlockSpec:
    type: str
    payload: dict[str, Any]
    children: list[BlockSpec] = field(default_factory=list)


def _color(raw: dict[str, Any], path: str, default: str = "default") -> str:
    color = raw.get("color", default)
    if color not in richtext.COLORS:
        raise errors.body_invalid(f"{path}.color", "should be a valid color", color)
    return color


def payload_for(kind: str, raw: dict[str, Any], path: str) -> dict[str, Any]:
    """The response payload of a block of `kind` built from request fields."""
    if kind == "divider":
        return {}
    rich = richtext.normalize(raw.get("rich_text", []), f"{path}.rich_text")
    if kind == "paragraph":
        return {"rich_text": rich, "icon": raw.get("icon"), "color": _color(raw, path)}
    if kind.startswith("heading_"):
        toggleable = raw.get("is_toggleable", False)
        return {"rich_text": rich, "is_toggleable": toggleable, "color": _color(raw, path)}
    if kind == "to_do":
        checked = raw.get("checked", False)
        if not isinstance(checked, bool):
            raise errors.body_invalid(f"{path}.checked", "should be a boolean", checked)
        return {"rich_text": rich, "checked": checked, "color": _color(raw, path)}
    if kind == "code":
        language = raw.get("language", CODE_LANGUAGES_DEFAULT)
        if not isinstance(language, str):
            raise errors.body_invalid(f"{path}.language", "should be a string", language)
        # a fence's info string from the markdown endpoint is not checked here: what
        # Notion makes of an unknown one is not recorded
        if path != "markdown" and language not in CODE_LANGUAGES:
            known = ", ".join(f'`"{name}"`' for name in sorted(CODE_LANGUAGES))
            raise errors.body_invalid(f"{path}.language", f"should be {known}", language)
        caption = richtext.normalize(raw.get("caption", []), f"{path}.caption")
        return {"caption": caption, "rich_text": rich, "language": language}
    if kind == "callout":
        icon = raw.get("icon") or {"type": "emoji", "emoji": "💡"}
        return {"rich_text": rich, "icon": icon, "color": _color(raw, path, "gray_background")}
    return {"rich_text": rich, "color": _color(raw, path)}


def block_type(raw: dict[str, Any], path: str) -> str:
    kind = raw.get("type") or next((k for k in raw if k in SUPPORTED), None)
    if kind is None:
        known = [k for k in raw if k not in ("object", "type")]
        raise errors.body_invalid(
            path,
            f"should be defined as one of the supported block types {list(SUPPORTED)}",
            known[0] if known else raw,
        )
    if kind not in SUPPORTED:
        raise errors.validation(f"Block type {kind} is not supported by the emulator.")
    return kind


def normalize_block(raw: Any, path: str, depth: int) -> BlockSpec:
    if not isinstance(raw, dict):
        raise errors.body_invalid(path, "should be an object", raw)
    kind = block_type(raw, path)
    body = raw.get(kind, {})
    if not isinstance(body, dict):
        raise errors.body_invalid(f"{path}.{kind}", "should be an object", body)
    payload = payload_for(kind, body, f"{path}.{kind}")
    spec = BlockSpec(kind, payload)
    kids = body.get("children")
    if kids is not None:
        kids_path = f"{path}.{kind}.children"
        # Headings take children only when they are toggles.
        nestable = kind in NESTABLE or (kind.startswith("heading_") and payload["is_toggleable"])
        if depth >= MAX_NESTING or not nestable:
            raise errors.body_invalid(kids_path, "should be not present", kids)
        items = richtext.check_array(kids, kids_path, MAX_BLOCKS_PER_APPEND)
        spec.children = [
            normalize_block(item, f"{kids_path}[{i}]", depth + 1) for i, item in enumerate(items)
        ]
    return spec


def count(specs: list[BlockSpec]) -> int:
    return sum(1 + count(s.children) for s in specs)


def normalize_children(raw: Any, path: str = "body.children") -> list[BlockSpec]:
    """Validate a `children` array as Notion does: ≤100 here, ≤1,000 in the whole request."""
    items = richtext.check_array(raw, path, MAX_BLOCKS_PER_APPEND)
    specs = [normalize_block(item, f"{path}[{i}]", 0) for i, item in enumerate(items)]
    total = count(specs)
    if total > MAX_BLOCKS_PER_REQUEST:
        raise errors.validation(
            f"body failed validation: the request contains {total} blocks, "
            f"more than the limit of {MAX_BLOCKS_PER_REQUEST}."
        )
    return specs


def update_payload(kind: str, current: dict[str, Any], raw: Any, path: str) -> dict[str, Any]:
    """Merge a block update (`{"paragraph": {...}}`) into the stored payload.

    Stored payloads are in response form, which is also a valid request form, so
    the merged dict goes back through `payload_for` and gets the same validation.
    """
    if not isinstance(raw, dict):
        raise errors.body_invalid(path, "should be an object", raw)
    return payload_for(kind, {**current, **raw}, path)
